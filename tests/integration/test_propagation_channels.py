"""Each invalidation channel on its own evicts another process's cache within a second.

Two containers on one database stand for two processes. The log poll is slowed to a minute so
that only the channel under test can deliver the eviction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from keyport.bootstrap import Container, build_container
from keyport.config import Settings
from keyport.domain.audit import Actor
from keyport.domain.errors import (
    DeactivatedApiKey,
    InvalidApiKey,
    PersonalTokensDisabled,
    UnknownActingUser,
)
from keyport.domain.users import NewUser, Role
from tests.support import databases
from tests.support.containers import FAST_PASSWORDS

SLOW_POLL = 60.0


async def started(settings: Settings) -> Container:
    container = build_container(settings)
    await container.start_background()
    for listener in container.listeners:
        await asyncio.wait_for(listener.connected.wait(), timeout=5)
    return container


@pytest.fixture(params=["postgres-listen", "redis", "sqlite-poll"])
async def pair(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Container, Container]]:
    if request.param == "sqlite-poll":
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'pair.db'}",
            invalidation_poll_interval=0.2,
            **FAST_PASSWORDS,
        )
    else:
        url = request.getfixturevalue("postgres_url")
        await databases.truncate_all(url)
        settings = Settings(
            database_url=url, invalidation_poll_interval=SLOW_POLL, **FAST_PASSWORDS
        )
        if request.param == "redis":
            settings = replace(settings, redis_url=databases.redis_url())
    setup = build_container(settings)
    await setup.migrate()
    await setup.close()
    first, second = await started(settings), await started(settings)
    if request.param == "redis":
        assert [type(x).__name__ for x in second.listeners] == ["RedisChannel"]
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def seconds_until_refused(container: Container, header: str, error: type[Exception]) -> float:
    started_at = time.monotonic()
    while time.monotonic() - started_at < 3:
        try:
            await container.authenticator.authenticate(header)
        except error:
            return time.monotonic() - started_at
        await asyncio.sleep(0.01)
    raise AssertionError(f"still accepted after 3 s, expected {error.__name__}")


async def test_revoke_and_deactivate_reach_the_other_process(
    pair: tuple[Container, Container],
) -> None:
    first, second = pair
    company = await first.companies.create_company(
        "Acme", NewUser("o@acme.test", "O", "W", "UTC"), Actor.cli()
    )
    keys = [
        await first.keys.issue_key(company.company.id, name=None, days=5, actor=Actor.cli())
        for _ in range(2)
    ]
    headers = [f"Bearer {k.key}" for k in keys]
    for header in headers:  # both processes have the principals cached
        await first.authenticator.authenticate(header)
        await second.authenticator.authenticate(header)

    await first.keys.revoke_key(company.company.id, keys[0].record.id, Actor.cli())
    with pytest.raises(InvalidApiKey):  # the revoking process: at once
        await first.authenticator.authenticate(headers[0])
    assert await seconds_until_refused(second, headers[0], InvalidApiKey) < 1.0

    await first.keys.deactivate_key(company.company.id, keys[1].record.id, Actor.cli())
    assert await seconds_until_refused(second, headers[1], DeactivatedApiKey) < 1.0


async def test_a_deleted_user_stops_acting_in_the_other_process(
    pair: tuple[Container, Container],
) -> None:
    first, second = pair
    company = await first.companies.create_company(
        "Acme", NewUser("o@acme.test", "O", "W", "UTC"), Actor.cli()
    )
    member = await first.users.create_user(
        company.company.id, NewUser("m@acme.test", "M", "B", "UTC"), Actor.cli()
    )
    issued = await first.keys.issue_key(company.company.id, name=None, days=5, actor=Actor.cli())
    principal = await second.authenticator.authenticate(f"Bearer {issued.key}")
    assert (
        await second.authenticator.acting_user(principal, member.id, required=True)
    ).id == member.id

    owner = await first.users.get_user(company.company.id, company.owner.id)
    await first.users.delete_user(owner, member.id, Actor.cli())
    started_at = time.monotonic()
    while True:
        try:
            await second.authenticator.acting_user(principal, member.id, required=True)
        except UnknownActingUser:
            break
        assert time.monotonic() - started_at < 1.0
        await asyncio.sleep(0.01)


async def seconds_until(check: Callable[[], Awaitable[bool]]) -> float:
    started_at = time.monotonic()
    while time.monotonic() - started_at < 3:
        if await check():
            return time.monotonic() - started_at
        await asyncio.sleep(0.01)
    raise AssertionError("not seen after 3 s")


async def test_personal_access_token_changes_reach_the_other_process(
    pair: tuple[Container, Container],
) -> None:
    """Revoked, tokens turned off (and on), the user's role changed, the user removed."""
    first, second = pair
    company = await first.companies.create_company(
        "Acme", NewUser("o@acme.test", "O", "W", "UTC"), Actor.cli()
    )
    company_id = company.company.id
    member = await first.users.create_user(
        company_id, NewUser("m@acme.test", "M", "B", "UTC"), Actor.cli()
    )
    tokens = [
        await first.tokens.issue(member, name=f"t{n}", days=5, scopes=None, actor=Actor.cli())
        for n in range(2)
    ]
    headers = [f"Bearer {t.token}" for t in tokens]
    for header in headers:  # both processes have the principals cached
        await first.authenticator.authenticate(header)
        await second.authenticator.authenticate(header)

    await first.tokens.revoke(member, tokens[0].record.id, Actor.cli())
    with pytest.raises(InvalidApiKey):  # the revoking process: at once
        await first.authenticator.authenticate(headers[0])
    assert await seconds_until_refused(second, headers[0], InvalidApiKey) < 1.0

    await first.tokens.set_policy(company_id, Actor.cli(), allow=False)
    assert await seconds_until_refused(second, headers[1], PersonalTokensDisabled) < 1.0
    await first.tokens.set_policy(company_id, Actor.cli(), allow=True)

    async def works_again() -> bool:
        try:
            await second.authenticator.authenticate(headers[1])
        except PersonalTokensDisabled:
            return False
        return True

    assert await seconds_until(works_again) < 1.0

    async def role_is_admin() -> bool:
        principal = await second.authenticator.authenticate(headers[1])
        acting = await second.authenticator.acting_user(principal, None, required=True)
        return acting.role is Role.ADMIN

    assert not await role_is_admin()
    owner = await first.users.get_user(company_id, company.owner.id)
    await first.team.change_role(owner, member.id, Role.ADMIN, Actor.cli())
    assert await seconds_until(role_is_admin) < 1.0

    await first.users.delete_user(owner, member.id, Actor.cli())
    assert await seconds_until_refused(second, headers[1], InvalidApiKey) < 1.0
