"""TOTP codes (RFC 6238: 30-second steps, 6 digits, SHA-1) and recovery codes.

A code is accepted for its own step and one step either side (clock drift), and only if that
step is later than the last one accepted for the user, so a code cannot be used twice.
Recovery codes are 50 random bits each, stored as SHA-256 digests (random, so a fast hash is
right), and each works once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import pyotp

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
ISSUER = "Keyport"
_CODE = re.compile(r"\d{6}\Z")
_RECOVERY = re.compile(r"[0-9a-f]{10}\Z")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, base32 for authenticator apps


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def clean_code(raw: str) -> str:
    return re.sub(r"[\s-]", "", raw).lower()


def is_totp_code(code: str) -> bool:
    return bool(_CODE.match(code))


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code `code` is, within the allowed drift; None if none is."""
    if not is_totp_code(code):
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def is_recovery_code(code: str) -> bool:
    return bool(_RECOVERY.match(code))


def recovery_digest(code: str) -> str:
    return hashlib.sha256(clean_code(code).encode()).hexdigest()
