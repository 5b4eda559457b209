"""Scopes and IP allowlists: the rules a restricted key is held to (docs/contract.md §6)."""

from __future__ import annotations

import pytest

from keyport.domain import keys, scopes
from keyport.domain.errors import ValidationFailed
from keyport.domain.ip_allowlists import allows, parse_networks


def test_full_access_grants_every_scope_but_keys_manage() -> None:
    assert scopes.grants(["*"], "users:read")
    assert scopes.grants(["*"], "billing:refund")
    assert not scopes.grants(["*"], "keys:manage")
    assert scopes.grants(["*", "keys:manage"], "keys:manage")


def test_a_named_scope_grants_only_itself() -> None:
    assert scopes.grants(["users:read"], "users:read")
    assert not scopes.grants(["users:read"], "users:write")


def test_first_missing_names_the_first_in_the_order_given() -> None:
    held = ["orders:read"]
    assert scopes.first_missing(held, ["orders:read", "b:x", "a:x"]) == "b:x"
    assert scopes.first_missing(held, ["orders:read"]) is None


@pytest.mark.parametrize(
    ("method", "scope"),
    [("GET", "users:read"), ("HEAD", "users:read"), ("OPTIONS", "users:read")]
    + [(m, "users:write") for m in ("POST", "PATCH", "PUT", "DELETE")],
)
def test_v4_scope_follows_the_method(method: str, scope: str) -> None:
    assert scopes.v4_scope(method) == scope


@pytest.mark.parametrize("value", ["*", "users:read", "a:b", "my-svc.v2:do_it"])
def test_valid_scopes(value: str) -> None:
    assert scopes.is_scope(value)


@pytest.mark.parametrize("value", ["", "users", "Users:read", "a:b:c", "a :b", "**", "a:*"])
def test_invalid_scopes(value: str) -> None:
    assert not scopes.is_scope(value)


def test_star_may_be_held_but_not_required() -> None:
    assert not scopes.is_required_scope("*")
    assert scopes.is_required_scope("orders:read")


def test_validate_scopes_defaults_to_full_access_and_drops_duplicates() -> None:
    assert keys.validate_scopes(None) == ("*",)
    assert keys.validate_scopes(["b:x", "a:x", "b:x"]) == ("b:x", "a:x")


@pytest.mark.parametrize("value", [[], "users:read", ["nope"], [1], ["a:b"] * 0 + ["A:B"]])
def test_validate_scopes_refuses_what_is_not_a_list_of_scopes(value: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        keys.validate_scopes(value)
    assert raised.value.errors[0].field == "scopes"


def test_describe_says_full_access_for_star() -> None:
    assert scopes.describe(["*"]) == "Full access"
    assert scopes.describe(["users:read", "orders:write"]) == "users:read orders:write"


def test_allowed_ips_are_canonical_networks() -> None:
    assert keys.validate_allowed_ips(None) == ()
    assert keys.validate_allowed_ips(["10.0.0.0/8", " 192.0.2.7 ", "2001:DB8::/32"]) == (
        "10.0.0.0/8",
        "192.0.2.7/32",
        "2001:db8::/32",
    )


@pytest.mark.parametrize("value", [["10.0.0.1/8"], ["2001:db8::1/32"], ["nowhere"], "10.0.0.0/8"])
def test_allowed_ips_refuse_host_bits_and_garbage(value: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        keys.validate_allowed_ips(value)
    assert raised.value.errors[0].field == "allowedIps"


def test_host_bits_are_named_in_the_message() -> None:
    with pytest.raises(ValidationFailed) as raised:
        keys.validate_allowed_ips(["10.0.0.1/8"])
    assert raised.value.errors[0].message == "10.0.0.1/8 has host bits set"


def test_allowlist_matches_ipv4_and_ipv6_networks() -> None:
    networks = parse_networks(["10.0.0.0/8", "2001:db8::/32"])
    assert allows(networks, "10.1.2.3")
    assert allows(networks, "2001:db8::5")
    assert allows(networks, "::ffff:10.1.2.3")
    assert not allows(networks, "11.0.0.1")
    assert not allows(networks, "2001:db9::1")
    assert not allows(networks, None)
    assert not allows(networks, "garbage")


def test_an_empty_allowlist_allows_anywhere() -> None:
    assert allows((), "198.51.100.1")
    assert allows((), None)
