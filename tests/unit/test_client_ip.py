"""Whose address a request comes from: the peer, or X-Forwarded-For from trusted proxies."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from keyport.config import Settings, SettingsError
from keyport.web import client_ip as client_ip_module
from keyport.web.client_ip import TrustedProxies, forwarded_scheme
from keyport.web.client_ip import resolve_client_ip as resolve
from keyport.web.request_headers import scan

PROXIES = TrustedProxies(
    (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
)


def scope(peer: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"client": (peer, 5000), "headers": headers}


def resolve_client_ip(request: dict[str, Any], proxies: TrustedProxies) -> str | None:
    """As the gate asks: the peer, and the X-Forwarded-For values its header scan found."""
    peer = request["client"][0]
    forwarded_for = scan(request["headers"]).forwarded_for
    return resolve(peer, proxies, forwarded_for, peer_trusted=proxies.trusts(peer))


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_claims() -> None:
    assert resolve_client_ip(scope("198.51.100.7", "1.2.3.4"), TrustedProxies()) == "198.51.100.7"


def test_a_peer_that_is_not_a_trusted_proxy_is_the_client() -> None:
    assert resolve_client_ip(scope("198.51.100.7", "1.2.3.4"), PROXIES) == "198.51.100.7"


def test_the_right_most_untrusted_forwarded_address_is_the_client() -> None:
    forged_then_real = scope("10.0.0.1", "6.6.6.6, 198.51.100.7, 10.0.0.2")
    assert resolve_client_ip(forged_then_real, PROXIES) == "198.51.100.7"


def test_several_forwarded_headers_read_as_one_list() -> None:
    assert resolve_client_ip(scope("10.0.0.1", "6.6.6.6", "203.0.113.9"), PROXIES) == (
        "203.0.113.9"
    )


def test_ports_and_brackets_are_stripped() -> None:
    assert resolve_client_ip(scope("10.0.0.1", "198.51.100.7:4711"), PROXIES) == "198.51.100.7"
    assert resolve_client_ip(scope("10.0.0.1", "[2001:db9::5]:443"), PROXIES) == "2001:db9::5"


def test_a_chain_of_only_trusted_proxies_names_the_left_most() -> None:
    assert resolve_client_ip(scope("10.0.0.1", "10.9.9.9, 10.0.0.2"), PROXIES) == "10.9.9.9"


def test_garbage_from_a_proxy_is_not_believed() -> None:
    assert resolve_client_ip(scope("10.0.0.1", "not-an-ip"), PROXIES) == "10.0.0.1"
    assert resolve_client_ip(scope("10.0.0.1"), PROXIES) == "10.0.0.1"


def test_trusted_proxies_are_read_from_the_environment() -> None:
    settings = Settings.from_env({"KEYPORT_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1 ,::1"})
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]
    with pytest.raises(SettingsError, match="KEYPORT_TRUSTED_PROXIES"):
        Settings.from_env({"KEYPORT_TRUSTED_PROXIES": "10.0.0.0/8, proxy.internal"})


def test_rate_limit_settings_are_read_and_checked() -> None:
    settings = Settings.from_env({"KEYPORT_RATE_LIMIT": "30", "KEYPORT_AUTH_FAILURE_LIMIT": "0"})
    assert (settings.rate_limit, settings.rate_limit_burst, settings.auth_failure_limit) == (
        30,
        60,
        0,
    )
    with pytest.raises(SettingsError, match="KEYPORT_RATE_LIMIT_BURST"):
        Settings.from_env({"KEYPORT_RATE_LIMIT_BURST": "0"})
    with pytest.raises(SettingsError, match="KEYPORT_RATE_LIMIT"):
        Settings.from_env({"KEYPORT_RATE_LIMIT": "1.5"})


def test_what_an_address_is_is_remembered_and_the_memory_is_bounded() -> None:
    proxies = TrustedProxies((ipaddress.ip_network("10.0.0.0/8"),))
    assert proxies.trusts("10.1.2.3") and not proxies.trusts("11.1.2.3")
    assert proxies.describe("[2001:db8::1]:443") == ("2001:db8::1", False)
    assert proxies.describe("not-an-ip") == (None, False)
    for n in range(client_ip_module._MAX_REMEMBERED + 5):
        proxies.describe(f"192.0.2.{n % 250}:{n}")
    assert len(proxies._seen) <= client_ip_module._MAX_REMEMBERED
    assert proxies.trusts("10.1.2.3") and not proxies.trusts(None)
    assert not TrustedProxies().trusts("10.1.2.3")


def test_the_nearest_proxys_scheme_counts_and_nonsense_keeps_the_connections() -> None:
    assert forwarded_scheme("http", b"https") == "https"
    assert forwarded_scheme("http", b"http, HTTPS ") == "https"  # right-most: the nearest proxy
    assert forwarded_scheme("http", b"https, http") == "http"
    assert forwarded_scheme("http", b"gopher") == "http"
    assert forwarded_scheme("https", None) == "https"
