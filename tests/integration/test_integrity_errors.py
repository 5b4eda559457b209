"""A database constraint the services did not foresee answers 409 or 400 in our error shape,
never 500: provoked for real with a rule added to the live schema (and removed after)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from keyport.bootstrap import Container
from keyport.db.engine import is_sqlite
from keyport.web import errors
from tests.conftest import Tenant
from tests.support.api_calls import validation_failed

UNIQUE_FAMILY = "test_only_unique_family_name"
NO_FORBIDDEN = "test_only_no_forbidden_name"


async def _run(container: Container, *statements: str) -> None:
    async with container.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


@pytest.fixture
async def unique_family_names(container: Container) -> AsyncIterator[None]:
    """A unique rule only the schema knows: no two users share a family name."""
    await _run(container, f"CREATE UNIQUE INDEX {UNIQUE_FAMILY} ON users (family_name)")
    try:
        yield
    finally:
        await _run(container, f"DROP INDEX {UNIQUE_FAMILY}")


@pytest.fixture
async def forbidden_given_name(container: Container, database_url: str) -> AsyncIterator[None]:
    """A check rule only the schema knows: nobody is called 'Forbidden'."""
    if is_sqlite(database_url):
        # SQLite cannot add a CHECK to a table; a trigger fails the same way.
        await _run(
            container,
            f"CREATE TRIGGER {NO_FORBIDDEN} BEFORE INSERT ON users "
            "WHEN NEW.given_name = 'Forbidden' BEGIN "
            f"SELECT RAISE(ABORT, 'CHECK constraint failed: {NO_FORBIDDEN}'); END",
        )
        drop = f"DROP TRIGGER {NO_FORBIDDEN}"
    else:
        await _run(
            container,
            f"ALTER TABLE users ADD CONSTRAINT {NO_FORBIDDEN} "
            "CHECK (given_name <> 'Forbidden') NOT VALID",
        )
        drop = f"ALTER TABLE users DROP CONSTRAINT {NO_FORBIDDEN}"
    try:
        yield
    finally:
        await _run(container, drop)


def new_user(email: str, given: str = "Nina", family: str = "New") -> dict[str, str]:
    return {"email": email, "givenName": given, "familyName": family, "timezone": "UTC"}


@pytest.mark.usefixtures("unique_family_names")
async def test_a_unique_rule_the_service_does_not_know_answers_409(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user", json=new_user("nina@acme.test", family="Member"), headers=tenant.auth()
    )
    assert answer.status_code == 409
    assert answer.json() == {
        "statusCode": 409,
        "message": "The change conflicts with data stored meanwhile",
        "error": "Conflict",
    }
    # The service's own rules still answer with their precise message.
    duplicate = await client.post(
        "/v4/user", json=new_user(tenant.member.email), headers=tenant.auth()
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["message"] == "A user with this email already exists"
    fine = await client.post(
        "/v4/user", json=new_user("nina@acme.test", family="Unique"), headers=tenant.auth()
    )
    assert fine.status_code == 201


@pytest.mark.usefixtures("forbidden_given_name")
async def test_a_check_rule_the_service_does_not_know_answers_400(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    answer = await client.post(
        "/v4/user", json=new_user("nina@acme.test", given="Forbidden"), headers=tenant.auth()
    )
    assert (answer.status_code, answer.json()) == validation_failed(
        "body", "breaks a rule of the stored data"
    )


def test_an_integrity_error_outside_a_unit_of_work_is_rendered_as_a_conflict() -> None:
    raw = IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: t.c"))
    status, body, _ = errors.render_unexpected(raw)
    assert status == 409
    assert body == (
        b'{"statusCode":409,"message":"The change conflicts with data stored meanwhile",'
        b'"error":"Conflict"}'
    )
