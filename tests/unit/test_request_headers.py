"""The one pass over a request's headers: which value of each header the gate reads."""

from __future__ import annotations

from keyport.web.request_headers import scan


def test_first_values_are_kept_and_the_size_counts_every_name_and_value() -> None:
    raw = [
        (b"host", b"example"),
        (b"user-agent", b"first"),
        (b"user-agent", b"second"),
        (b"authorization", b"Bearer x"),
        (b"x-meetergo-api-user-id", b"u"),
    ]
    found = scan(raw)
    assert found.size == sum(len(k) + len(v) for k, v in raw)
    assert (found.user_agent, found.authorization, found.user_id) == ("first", "Bearer x", "u")
    assert found.duplicated is None


def test_the_first_identity_header_sent_twice_is_named() -> None:
    found = scan(
        [
            (b"authorization", b"a"),
            (b"x-meetergo-api-user-id", b"u"),
            (b"x-meetergo-api-user-id", b"v"),
            (b"authorization", b"b"),
        ]
    )
    assert found.duplicated == "x-meetergo-api-user-id"
    assert (found.authorization, found.user_id) == ("a", "u")


def test_identity_headers_count_whatever_the_case_of_their_name() -> None:
    found = scan([(b"authorization", b"a"), (b"Authorization", b"b")])
    assert found.duplicated == "authorization"
    assert scan([(b"X-Meetergo-Api-User-Id", b"u")]).user_id == "u"


def test_forwarded_headers_every_for_the_last_proto_and_the_first_method_and_uris() -> None:
    found = scan(
        [
            (b"x-forwarded-for", b"1.1.1.1, 2.2.2.2"),
            (b"x-forwarded-proto", b"http"),
            (b"x-forwarded-for", b"3.3.3.3"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-method", b"POST"),
            (b"x-forwarded-method", b"GET"),
            (b"x-forwarded-uri", b"/a?q"),
            (b"x-original-uri", b"/b"),
            (b"x-original-uri", b"/c"),
        ]
    )
    assert found.forwarded_for == [b"1.1.1.1, 2.2.2.2", b"3.3.3.3"]
    assert found.forwarded_proto == b"https"
    assert (found.forwarded_method, found.forwarded_uri, found.original_uri) == (
        "POST",
        "/a?q",
        "/b",
    )


def test_nothing_of_interest_leaves_every_field_empty() -> None:
    found = scan([(b"accept", b"*/*")])
    assert (found.authorization, found.user_id, found.user_agent, found.duplicated) == (
        None,
        None,
        None,
        None,
    )
    assert (found.forwarded_for, found.forwarded_proto, found.forwarded_uri) == ([], None, None)


def test_prefer_return_minimal_is_found_among_other_preferences() -> None:
    assert not scan([]).minimal
    assert scan([(b"prefer", b"return=minimal")]).minimal
    assert scan([(b"prefer", b"respond-async, RETURN=minimal; x=1")]).minimal
    assert scan([(b"prefer", b"wait=5"), (b"prefer", b" return=minimal ")]).minimal
    assert not scan([(b"prefer", b"return=representation")]).minimal
    assert not scan([(b"prefer", b"return=minimalist")]).minimal
