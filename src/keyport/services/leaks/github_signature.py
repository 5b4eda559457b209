"""GitHub's secret-scanning signature: is this report really from GitHub?

GitHub signs each report's raw body with ECDSA P-256 / SHA-256 and names its key in
`Github-Public-Key-Identifier`; the public keys are in a document of the shape
`{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`. Every listed key verifies,
current or not (GitHub rotates them). The document is read when first needed, kept up to an
hour, and read again — at most once a minute, so forged identifiers cannot make us hammer its
host — when a request names an identifier it does not hold. Nothing here looks at the body
beyond checking the signature over its bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

KEEP_SECONDS = 3600.0
REFETCH_SECONDS = 60.0

FetchDocument = Callable[[], Awaitable[bytes]]
"""Reads the public-key document; raises OSError (or a subclass) when it cannot be had."""


class SignatureKeysUnavailable(Exception):
    """The public-key document could not be read or understood: answer 503 so GitHub retries."""


def parse_document(raw: bytes) -> dict[str, ec.EllipticCurvePublicKey]:
    """The document's P-256 keys by identifier; SignatureKeysUnavailable if it is not one."""
    try:
        document: Any = json.loads(raw)
        keys: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in document["public_keys"]:
            key = load_pem_public_key(entry["key"].encode())
            if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
                keys[str(entry["key_identifier"])] = key
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as error:
        raise SignatureKeysUnavailable("the public-key document is malformed") from error
    return keys


class GithubSignatures:
    """Verifies reports against GitHub's public keys, read through `fetch` and cached."""

    def __init__(self, fetch: FetchDocument, monotonic: Callable[[], float]) -> None:
        self._fetch = fetch
        self._monotonic = monotonic
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._read_at: float | None = None

    async def verify(self, identifier: str | None, signature: str | None, body: bytes) -> bool:
        """True when `signature` (base64 DER) over `body` holds for the key `identifier`.

        Raises SignatureKeysUnavailable when the document is needed and cannot be read."""
        if not identifier or not signature:
            return False
        key = await self._key(identifier)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    async def _key(self, identifier: str) -> ec.EllipticCurvePublicKey | None:
        now = self._monotonic()
        stale = self._read_at is None or now - self._read_at >= KEEP_SECONDS
        may_refetch = self._read_at is None or now - self._read_at >= REFETCH_SECONDS
        if stale or (identifier not in self._keys and may_refetch):
            await self._read(now)
        return self._keys.get(identifier)

    async def _read(self, now: float) -> None:
        try:
            raw = await self._fetch()
        except OSError as error:
            raise SignatureKeysUnavailable("the public-key document cannot be read") from error
        self._keys = parse_document(raw)
        self._read_at = now
