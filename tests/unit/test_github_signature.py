"""GitHub's report signature: checked against a key pair made here, the document cached."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyport.services.leaks.github_signature import (
    GithubSignatures,
    SignatureKeysUnavailable,
)

BODY = b'[{"token":"x","type":"t","url":"https://example.test/","source":"content"}]'


def _pem(private: ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _sign(private: ec.EllipticCurvePrivateKey, body: bytes) -> str:
    return base64.b64encode(private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


class Source:
    """The document's host: counts reads, can be made unreachable, its keys swapped."""

    def __init__(self, keys: dict[str, ec.EllipticCurvePrivateKey]) -> None:
        self.keys = keys
        self.reads = 0
        self.down = False

    async def fetch(self) -> bytes:
        self.reads += 1
        if self.down:
            raise ConnectionRefusedError("down")
        entries = [
            {"key_identifier": name, "key": _pem(key), "is_current": index == 0}
            for index, (name, key) in enumerate(self.keys.items())
        ]
        return json.dumps({"public_keys": entries}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verify(
    signatures: GithubSignatures, identifier: str | None, sig: str | None, body: bytes
) -> bool:
    return asyncio.run(signatures.verify(identifier, sig, body))


def test_every_listed_key_verifies_and_anything_else_is_refused() -> None:
    current, older = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    source = Source({"current": current, "older": older})
    signatures = GithubSignatures(source.fetch, Clock())
    assert _verify(signatures, "current", _sign(current, BODY), BODY)
    assert _verify(signatures, "older", _sign(older, BODY), BODY)
    assert not _verify(signatures, "current", _sign(older, BODY), BODY)  # wrongly signed
    assert not _verify(signatures, "current", _sign(current, BODY), BODY + b" ")  # tampered
    assert not _verify(signatures, "current", "not base64!", BODY)
    assert not _verify(signatures, None, _sign(current, BODY), BODY)  # missing header
    assert not _verify(signatures, "current", None, BODY)
    assert source.reads == 1


def test_an_unknown_identifier_refetches_at_most_once_a_minute_and_the_document_lasts_an_hour() -> (
    None
):
    first, second = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    source, clock = Source({"first": first}), Clock()
    signatures = GithubSignatures(source.fetch, clock)
    assert not _verify(signatures, "second", _sign(second, BODY), BODY)
    assert source.reads == 1
    source.keys["second"] = second
    clock.now += 30
    assert not _verify(signatures, "second", _sign(second, BODY), BODY)
    assert source.reads == 1  # within the minute: no second read
    clock.now += 31
    assert _verify(signatures, "second", _sign(second, BODY), BODY)
    assert source.reads == 2
    clock.now += 3599
    assert _verify(signatures, "first", _sign(first, BODY), BODY)
    assert source.reads == 2
    clock.now += 1
    assert _verify(signatures, "first", _sign(first, BODY), BODY)
    assert source.reads == 3  # an hour old: read again


def test_an_unreadable_or_malformed_document_is_unavailable_never_a_refusal() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    source = Source({"k": key})
    source.down = True
    with pytest.raises(SignatureKeysUnavailable):
        _verify(GithubSignatures(source.fetch, Clock()), "k", _sign(key, BODY), BODY)

    async def malformed() -> bytes:
        return b'{"public_keys": [{"key": "nope"}]}'

    with pytest.raises(SignatureKeysUnavailable):
        _verify(GithubSignatures(malformed, Clock()), "k", _sign(key, BODY), BODY)
