"""Keys derived from the server secret: sealing TOTP and webhook signing secrets, signing
sign-in challenges.

The server secret (`KEYPORT_SECRET_KEY`, or a generated file for the zero-setup run) never
meets data directly: each use gets its own key, HMAC-SHA256(server secret, purpose). TOTP
secrets and webhook endpoint secrets are stored as Fernet tokens (AES-128-CBC + HMAC-SHA256),
so a copy of the database alone yields no second factor and no webhook signing secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

_SEALING = b"keyport totp secrets v1"
_SIGNING = b"keyport sign-in challenges v1"


class SecretUnreadable(Exception):
    """A sealed value that this server secret did not seal (changed secret, or tampering)."""


def _derive(server_secret: str, purpose: bytes) -> bytes:
    return hmac.new(server_secret.encode(), purpose, hashlib.sha256).digest()


class SecretBox:
    def __init__(self, server_secret: str) -> None:
        if len(server_secret) < 16:
            raise ValueError("the server secret must be at least 16 characters")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(server_secret, _SEALING)))
        self._signing_key = _derive(server_secret, _SIGNING)

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable() from None

    def sign(self, message: str) -> str:
        return hmac.new(self._signing_key, message.encode(), hashlib.sha256).hexdigest()

    def signature_matches(self, message: str, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message).encode(), signature.encode())
