"""The place a client is counted as by every per-address limit: its IPv4 address, or its IPv6
address's /64.

One IPv6 subscriber is handed a whole /64 (often more) and picks any address in it at will, so
counting single IPv6 addresses gives everyone 2**64 fresh buckets. An IPv4 address mapped into
IPv6 (`::ffff:192.0.2.1`, as a dual-stack socket reports it) is that IPv4 address.
"""

from __future__ import annotations

import functools
import ipaddress
from datetime import timedelta
from typing import overload

IPV6_PREFIX = 64
# A place an account signed in from successfully this recently is one of its holder's: the
# account-wide cap on guesses spares it (services/accounts/sign_in_limiter.py).
KNOWN_FOR = timedelta(days=30)


@functools.lru_cache(maxsize=4096)
def _ipv6_place(address: str) -> str:
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address  # not an address: counted as the text it is
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    host_bits = 128 - IPV6_PREFIX
    return str(ipaddress.IPv6Network((int(ip) >> host_bits << host_bits, IPV6_PREFIX)))


@overload
def place_of(ip: str) -> str: ...
@overload
def place_of(ip: None) -> None: ...
@overload
def place_of(ip: str | None) -> str | None: ...


def place_of(ip: str | None) -> str | None:
    """`192.0.2.1` → itself; `2001:db8:1:2:a:b:c:d` → `2001:db8:1:2::/64`; None → None."""
    if ip is None or ":" not in ip:
        return ip
    return _ipv6_place(ip)
