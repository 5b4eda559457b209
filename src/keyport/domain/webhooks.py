"""Webhooks as the Standard Webhooks spec draws them: secrets, signatures, events, retries.

Spec: https://www.standardwebhooks.com — a message is signed as
`base64(HMAC-SHA256(secret, "<webhook-id>.<webhook-timestamp>.<body>"))` and sent with the
headers `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<signature>`; the secret
travels as `whsec_<base64 of its bytes>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from keyport.domain.errors import ValidationFailed

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


class EventType(StrEnum):
    CREATED = "api_key.created"
    UPDATED = "api_key.updated"
    ROTATED = "api_key.rotated"
    DEACTIVATED = "api_key.deactivated"
    ACTIVATED = "api_key.activated"
    REVOKED = "api_key.revoked"
    EXPIRING = "api_key.expiring"
    EXPIRED = "api_key.expired"
    TOKEN_CREATED = "personal_access_token.created"
    TOKEN_REVOKED = "personal_access_token.revoked"
    TOKEN_EXPIRING = "personal_access_token.expiring"
    TOKEN_EXPIRED = "personal_access_token.expired"


# After the n-th failed attempt the next comes this long later; after the last, none.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
# An endpoint to which every delivery has failed this long is disabled.
DISABLE_AFTER = timedelta(days=3)
DELIVERY_TIMEOUT = 5.0  # seconds
MAX_URL_LENGTH = 2000


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one message."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def next_attempt(attempts: int, now: datetime) -> datetime | None:
    """When to try again after `attempts` failed attempts; None: give up."""
    if attempts < 1 or attempts > len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[attempts - 1]


def validate_event_types(types: list[str]) -> list[str]:
    known = {t.value for t in EventType}
    unknown = [t for t in types if t not in known]
    if unknown:
        raise ValidationFailed.single(
            "events", f"unknown event type {unknown[0]!r}; known: {', '.join(sorted(known))}"
        )
    return sorted(set(types))


def validate_url(url: str) -> str:
    """An absolute http(s) URL with a host; where it points is checked on delivery too."""
    cleaned = url.strip()
    parts = urlsplit(cleaned)
    if len(cleaned) > MAX_URL_LENGTH or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationFailed.single("url", "must be an absolute http or https URL")
    if parts.username or parts.password:
        raise ValidationFailed.single("url", "must not contain a user name or password")
    problem = host_spelling_problem(parts.hostname)
    if problem is not None:
        raise ValidationFailed.single("url", problem)
    return cleaned


# A host whose last label is a number is an IPv4 address to URL parsers and to the system
# resolver (inet_aton), which also read `2130706433`, `0x7f.1` and `0177.0.0.1` as 127.0.0.1.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z", re.IGNORECASE)
IPV4_SPELLING = "must write an IPv4 address as four decimal numbers (like 192.0.2.1)"


def host_spelling_problem(host: str) -> str | None:
    """Why `host` (a URL's host name, lowercased) is an odd spelling of an IPv4 address —
    decimal, octal, hex, fewer than four parts, leading zeros — or None."""
    name = host.rstrip(".")
    if ":" in name or not _NUMERIC_LABEL.match(name.rsplit(".", 1)[-1]):
        return None
    try:
        return None if str(ipaddress.IPv4Address(name)) == name else IPV4_SPELLING
    except ValueError:
        return IPV4_SPELLING


# IPv6 forms that carry an IPv4 address, each reaching that IPv4 host through a translator or
# a tunnel: IPv4-compatible (::/96) and -mapped, 6to4, Teredo, and the NAT64 prefixes.
_EMBEDDING_NETWORKS = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",
        "::ffff:0:0/96",
        "2002::/16",
        "2001::/32",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
    )
)


def embeds_ipv4(ip: ipaddress.IPv6Address) -> bool:
    return any(ip in network for network in _EMBEDDING_NETWORKS)


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, reserved and other non-global addresses, and
    for every IPv6 address that embeds an IPv4 one (whichever IPv4 address it is: a public
    receiver has a plain address)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and embeds_ipv4(ip):
        return False
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    company_id: str
    url: str
    events: tuple[str, ...]  # empty: every type
    created_at: datetime
    failing_since: datetime | None
    disabled_at: datetime | None

    def wants(self, event_type: str) -> bool:
        return self.disabled_at is None and (not self.events or event_type in self.events)


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    """An endpoint just added: its secret is shown this once."""

    endpoint: Endpoint
    secret: str


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the last retry, or the endpoint went away


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one endpoint, as the delivery log shows it."""

    id: int
    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """What the worker needs to send one attempt; holds the endpoint's secret as stored,
    sealed under the server secret (services.accounts.secret_box): the worker opens it to sign."""

    id: int
    attempts: int
    message_id: str
    body: bytes
    endpoint: Endpoint
    sealed_secret: str
