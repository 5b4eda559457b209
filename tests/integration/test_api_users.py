"""The v4 user endpoints: acting user, admin rules, isolation, validation, conflicts."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import Tenant
from tests.support.api_calls import validation_failed

USER_HEADER = "x-meetergo-api-user-id"


def error(status: int, message: str) -> dict[str, object]:
    phrases = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict"}
    return {"statusCode": status, "message": message, "error": phrases[status]}


async def test_me_without_the_header_is_the_owner(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v4/user/me", headers=tenant.auth())
    assert answer.status_code == 200
    me = answer.json()
    owner = tenant.owner
    assert me == {
        "id": owner.id,
        "email": owner.email,
        "givenName": "Olga",
        "familyName": "Owner",
        "fullName": "Olga Owner",
        "slug": None,
        "timezone": "Europe/Berlin",
        "language": "en",
        "isAdmin": True,
        "userType": "standard",
        "companyId": tenant.company_id,
        "createdAt": me["createdAt"],
        "updatedAt": me["updatedAt"],
    }
    assert me["createdAt"].endswith("Z") and len(me["createdAt"]) == 24


async def test_me_with_the_header_is_the_named_member(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v4/user/me", headers=tenant.auth(tenant.member))
    assert answer.status_code == 200
    assert (answer.json()["id"], answer.json()["isAdmin"]) == (tenant.member.id, False)


async def test_list_users_for_an_admin(client: httpx.AsyncClient, tenant: Tenant) -> None:
    everyone = (await client.get("/v4/user", headers=tenant.auth(tenant.admin))).json()
    assert sorted(u["email"] for u in everyone["users"]) == [
        "admin@acme.test",
        "member@acme.test",
        "owner@acme.test",
    ]
    answer = await client.get("/v4/user?limit=2&offset=1", headers=tenant.auth(tenant.admin))
    assert answer.status_code == 200
    page = answer.json()
    assert (page["total"], page["count"], page["offset"]) == (3, 2, 1)
    assert page["users"] == everyone["users"][1:]


async def test_list_users_filters_by_user_type(client: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await client.get("/v4/user?userType=resource", headers=tenant.auth(tenant.owner))
    assert answer.json() == {"users": [], "total": 0, "count": 0, "offset": 0}


async def test_list_users_is_refused_to_a_member(client: httpx.AsyncClient, tenant: Tenant) -> None:
    answer = await client.get("/v4/user", headers=tenant.auth(tenant.member))
    assert answer.status_code == 403
    assert answer.json() == error(403, "Only company owners and admins can do this")


async def test_list_users_validates_limit_and_offset(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    for query in ["limit=0", "limit=101", "offset=-1", "limit=abc", "userType=robot"]:
        answer = await client.get(f"/v4/user?{query}", headers=tenant.auth(tenant.owner))
        assert answer.status_code == 400, query
        assert answer.json()["message"] == "Validation failed"
        assert answer.json()["errors"][0]["field"] in {"limit", "offset", "userType"}


async def test_list_users_refuses_an_unknown_query_parameter(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v4/user?limit=1&usertype=admin", headers=tenant.auth(tenant.owner))
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"field": "usertype", "message": "is not a known parameter"}]


async def test_list_users_refuses_a_query_value_without_a_name(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.get("/v4/user?=null", headers=tenant.auth(tenant.owner))
    assert (answer.status_code, answer.json()) == validation_failed(
        "query", "a parameter needs a name"
    )


async def test_create_user_without_the_header_acts_as_owner(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user",
        headers=tenant.auth(),
        json={
            "email": "New.Person@Acme.test",
            "givenName": "New",
            "familyName": "Person",
            "timezone": "America/New_York",
            "slug": "New Person",
        },
    )
    assert answer.status_code == 201
    created = answer.json()
    assert created == {"userId": created["userId"], "companyId": tenant.company_id}
    fetched = await client.get(f"/v4/user/{created['userId']}", headers=tenant.auth(tenant.owner))
    assert (fetched.json()["email"], fetched.json()["slug"]) == (
        "new.person@acme.test",
        "new-person",
    )


async def test_create_user_refuses_a_duplicate_email(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user",
        headers=tenant.auth(),
        json={"email": "MEMBER@acme.test", "givenName": "M", "familyName": "D", "timezone": "UTC"},
    )
    assert answer.status_code == 409
    assert answer.json() == error(409, "A user with this email already exists")


async def test_create_user_refuses_a_bad_timezone(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user",
        headers=tenant.auth(),
        json={
            "email": "tz@acme.test",
            "givenName": "T",
            "familyName": "Z",
            "timezone": "Mars/Base",
        },
    )
    assert answer.status_code == 400
    assert answer.json() == {
        **error(400, "Validation failed"),
        "errors": [
            {"field": "timezone", "message": "must be an IANA time zone such as Europe/Berlin"}
        ],
    }


async def test_create_user_reports_missing_unknown_and_mistyped_fields(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    cases = [
        ({"givenName": "A", "familyName": "B", "timezone": "UTC"}, "email", "is required"),
        (
            {"email": "a@b.co", "givenName": "A", "familyName": "B", "timezone": "UTC", "x": 1},
            "x",
            "is not a known field",
        ),
        (
            {"email": 5, "givenName": "A", "familyName": "B", "timezone": "UTC"},
            "email",
            "Expected 'str', got 'int'",
        ),
    ]
    for payload, field, message in cases:
        answer = await client.post("/v4/user", headers=tenant.auth(), json=payload)
        assert answer.status_code == 400
        assert answer.json()["errors"] == [{"field": field, "message": message}]


async def test_malformed_json_is_a_validation_error(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user",
        headers={**tenant.auth(), "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{"field": "body", "message": "must be valid JSON"}]


async def test_create_user_is_refused_to_a_member(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user",
        headers=tenant.auth(tenant.member),
        json={"email": "x@acme.test", "givenName": "X", "familyName": "Y", "timezone": "UTC"},
    )
    assert answer.status_code == 403


async def test_another_companys_user_is_a_404_like_an_unknown_id(
    client: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    headers = tenant.auth(tenant.owner)
    foreign = await client.get(f"/v4/user/{other_tenant.member.id}", headers=headers)
    unknown = await client.get(f"/v4/user/{uuid.uuid4()}", headers=headers)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json() == error(404, "User not found")
    for method in ("PATCH", "DELETE"):
        answer = await client.request(
            method,
            f"/v4/user/{other_tenant.member.id}",
            headers=headers,
            json={"givenName": "Hacked"} if method == "PATCH" else None,
        )
        assert (answer.status_code, answer.json()) == (404, error(404, "User not found"))


async def test_a_member_may_update_themselves_but_not_others(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    mine = await client.patch(
        f"/v4/user/{tenant.member.id}",
        headers=tenant.auth(tenant.member),
        json={"givenName": "Maxi", "slug": "Maxi Member"},
    )
    assert mine.status_code == 200
    assert (mine.json()["givenName"], mine.json()["fullName"], mine.json()["slug"]) == (
        "Maxi",
        "Maxi Member",
        "maxi-member",
    )
    theirs = await client.patch(
        f"/v4/user/{tenant.admin.id}",
        headers=tenant.auth(tenant.member),
        json={"givenName": "Nope"},
    )
    assert theirs.status_code == 403


async def test_patch_refuses_email_changes_short_slugs_and_taken_slugs(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    headers = tenant.auth(tenant.owner)
    email = await client.patch(
        f"/v4/user/{tenant.member.id}", headers=headers, json={"email": "a@b.co"}
    )
    assert email.json()["errors"] == [{"field": "email", "message": "cannot be changed"}]
    short = await client.patch(
        f"/v4/user/{tenant.member.id}", headers=headers, json={"slug": "abc"}
    )
    assert short.json()["errors"] == [{"field": "slug", "message": "must be at least 5 characters"}]
    await client.patch(f"/v4/user/{tenant.admin.id}", headers=headers, json={"slug": "taken-slug"})
    taken = await client.patch(
        f"/v4/user/{tenant.member.id}", headers=headers, json={"slug": "Taken Slug"}
    )
    assert (taken.status_code, taken.json()) == (409, error(409, "This slug is already taken"))


async def test_delete_rules(client: httpx.AsyncClient, tenant: Tenant) -> None:
    admin = tenant.auth(tenant.admin)
    assert (await client.delete(f"/v4/user/{tenant.admin.id}", headers=admin)).json() == error(
        403, "You cannot delete yourself"
    )
    assert (await client.delete(f"/v4/user/{tenant.owner.id}", headers=admin)).json() == error(
        403, "The company owner cannot be deleted"
    )
    by_member = await client.delete(
        f"/v4/user/{tenant.admin.id}", headers=tenant.auth(tenant.member)
    )
    assert by_member.status_code == 403
    gone = await client.delete(f"/v4/user/{tenant.member.id}", headers=admin)
    assert (gone.status_code, gone.content) == (204, b"")
    again = await client.get(f"/v4/user/{tenant.member.id}", headers=admin)
    assert again.status_code == 404


async def test_a_deleted_user_stops_acting_at_once(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    as_member = tenant.auth(tenant.member)
    assert (await client.get("/v4/user/me", headers=as_member)).status_code == 200
    await client.delete(f"/v4/user/{tenant.member.id}", headers=tenant.auth(tenant.owner))
    answer = await client.get("/v4/user/me", headers=as_member)
    assert answer.status_code == 403
