"""Where a key may be used from: an optional list of IPv4/IPv6 networks (docs/contract.md §6).

An empty list means anywhere. A network is written `address/prefix` (a bare address is one
host); one with host bits set (`10.0.0.1/8`) is refused rather than silently widened, since
the operator most likely meant something else.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_NETWORKS = 100


def parse_network(text: str) -> IpNetwork:
    """One network, strictly; ValueError with a message for people otherwise."""
    cleaned = text.strip()
    try:
        return ipaddress.ip_network(cleaned, strict=True)
    except ValueError as error:
        if "has host bits set" in str(error):
            raise ValueError(f"{cleaned} has host bits set") from None
        raise ValueError(f"{cleaned or '(empty)'} is not an IPv4 or IPv6 network") from None


def parse_networks(texts: Iterable[str]) -> tuple[IpNetwork, ...]:
    """Stored texts back to networks, in their order, without duplicates."""
    networks: dict[IpNetwork, None] = {}
    for text in texts:
        networks[parse_network(text)] = None
    return tuple(networks)


def allows(networks: tuple[IpNetwork, ...], client_ip: str | None) -> bool:
    """Whether `client_ip` is inside one of `networks`; any address when there are none."""
    if not networks:
        return True
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1 on a dual-stack socket
    return any(address.version == n.version and address in n for n in networks)
