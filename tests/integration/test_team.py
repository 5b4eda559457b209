"""The team page and the role, ownership and removal use cases behind it (and the CLI's)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from keyport.bootstrap import Container
from keyport.db.tables import users
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.audit import Actor, AuditAction
from keyport.domain.errors import Conflict, NotFound, PermissionDenied
from keyport.domain.users import Role
from keyport.services.ports import AuditFilter
from tests.conftest import Tenant
from tests.support.admin import dashboard, sign_in, text_of
from tests.support.team import csrf_of, post_form

ADMIN_ONLY = "Only company owners and admins can do this"
CSRF_REFUSED = "This form has expired or did not come from this dashboard."


async def role_of(container: Container, user_id: str) -> str:
    async with container.engine.connect() as connection:
        return str(await connection.scalar(select(users.c.role).where(users.c.id == user_id)))


async def owners_of(container: Container, company_id: str) -> int:
    async with container.engine.connect() as connection:
        count = await connection.scalar(
            select(func.count()).where(
                users.c.company_id == company_id,
                users.c.role == "owner",
                users.c.deleted_at.is_(None),
            )
        )
    return int(count or 0)


async def audit_details(
    container: Container, company_id: str, action: AuditAction
) -> list[dict[str, object]]:
    async with SqlUnitOfWorkFactory(container.engine)() as reading:
        found, _ = await reading.audit.list(
            AuditFilter(company_id=company_id, action=action.value), 100, 0
        )
    return [{"actor": e.actor.user_id, "target": e.target_id, **e.details} for e in found]


async def test_a_member_gets_the_403_page_on_the_team_page(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.member.email, "member-password-1")
        page = await http.get("/admin/team")

    assert page.status_code == 403
    assert ADMIN_ONLY in text_of(page.text)
    assert tenant.owner.email not in page.text


async def test_the_owner_sees_everyone_with_role_and_two_factor_status(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        page = await http.get("/admin/team")

    text = text_of(page.text)
    assert page.status_code == 200
    for person in (tenant.owner, tenant.admin, tenant.member):
        assert person.email in text
    assert other_tenant.owner.email not in text
    assert "Two-factor" in text and "Off" in text
    assert f"/admin/team/{tenant.member.id}/role" in page.text  # the owner may change roles


async def test_an_admin_cannot_demote_the_owner(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        csrf = await csrf_of(http)
        answer = await post_form(http, f"/admin/team/{tenant.owner.id}/role", csrf, role="member")

    assert answer.status_code == 403
    assert "The owner's role changes only by transferring ownership" in text_of(answer.text)
    assert await role_of(container, tenant.owner.id) == "owner"


async def test_only_the_owner_makes_or_unmakes_admins(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        csrf = await csrf_of(http)
        answer = await post_form(http, f"/admin/team/{tenant.member.id}/role", csrf, role="admin")

    assert answer.status_code == 403
    assert "Only the owner can make or unmake admins" in text_of(answer.text)
    assert await role_of(container, tenant.member.id) == "member"


async def test_the_owner_changes_a_role_and_it_is_audited(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        csrf = await csrf_of(http)
        answer = await post_form(http, f"/admin/team/{tenant.member.id}/role", csrf, role="admin")
        audit = await http.get("/admin/audit")

    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/team?notice=role"
    assert await role_of(container, tenant.member.id) == "admin"
    assert await audit_details(container, tenant.company_id, AuditAction.USER_ROLE_CHANGED) == [
        {
            "actor": tenant.owner.id,
            "target": tenant.member.id,
            "email": tenant.member.email,
            "from": "member",
            "to": "admin",
        }
    ]
    assert "Role changed" in text_of(audit.text)


async def test_a_role_change_without_the_csrf_token_is_refused(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        missing = await post_form(http, f"/admin/team/{tenant.member.id}/role", None, role="admin")
        forged = await post_form(
            http, f"/admin/team/{tenant.member.id}/role", "x" * 43, role="admin"
        )
        cross_site = await http.post(
            f"/admin/team/{tenant.member.id}/role",
            data={"csrf_token": await csrf_of(http), "role": "admin"},
            headers={"Sec-Fetch-Site": "cross-site"},
        )

    for answer in (missing, forged, cross_site):
        assert answer.status_code == 403
        assert CSRF_REFUSED in text_of(answer.text)
    assert await role_of(container, tenant.member.id) == "member"


async def test_removing_someone_ends_their_sessions_at_once(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as owner, dashboard(container) as member:
        await sign_in(member, tenant.member.email, "member-password-1")
        assert (await member.get("/admin/account")).status_code == 200
        await sign_in(owner, tenant.owner.email, "owner-password-1")
        removed = await post_form(
            owner, f"/admin/team/{tenant.member.id}/remove", await csrf_of(owner)
        )
        after = await member.get("/admin/account")
        team = await owner.get("/admin/team")

    assert removed.status_code == 303
    assert removed.headers["location"] == "/admin/team?notice=removed"
    assert after.status_code == 303
    assert after.headers["location"].startswith("/admin/login")
    assert tenant.member.email not in text_of(team.text)


@pytest.mark.parametrize("whom", ["owner", "self"])
async def test_nobody_removes_the_owner_or_themselves(
    container: Container, tenant: Tenant, whom: str
) -> None:
    target = tenant.owner if whom == "owner" else tenant.admin
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        answer = await post_form(http, f"/admin/team/{target.id}/remove", await csrf_of(http))

    assert answer.status_code == 403
    message = "The company owner cannot be removed" if whom == "owner" else "You cannot remove"
    assert message in text_of(answer.text)
    assert await role_of(container, target.id) == target.role.value


async def test_an_admin_cannot_remove_another_admin(container: Container, tenant: Tenant) -> None:
    promoted = await container.team.set_role_by_email(tenant.member.email, Role.ADMIN, Actor.cli())
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        answer = await post_form(http, f"/admin/team/{promoted.id}/remove", await csrf_of(http))

    assert answer.status_code == 403
    assert "Only the owner can remove an admin" in text_of(answer.text)


async def test_the_owner_transfers_ownership_and_keys_act_as_the_new_owner(
    container: Container, tenant: Tenant, client: httpx.AsyncClient
) -> None:
    before = await client.get("/v4/user/me", headers=tenant.auth())
    async with dashboard(container) as http:
        await sign_in(http, tenant.owner.email, "owner-password-1")
        confirm = await http.get(f"/admin/team/{tenant.admin.id}/transfer")
        answer = await post_form(
            http, f"/admin/team/{tenant.admin.id}/transfer", await csrf_of(http)
        )
        now_admin = await http.get("/admin/team")
    after = await client.get("/v4/user/me", headers=tenant.auth())

    assert confirm.status_code == 200
    assert f"Make {tenant.admin.full_name} ({tenant.admin.email}) the owner?" in text_of(
        confirm.text
    )
    assert answer.status_code == 303
    assert (
        await role_of(container, tenant.admin.id),
        await role_of(container, tenant.owner.id),
    ) == (
        "owner",
        "admin",
    )
    assert await owners_of(container, tenant.company_id) == 1
    assert before.json()["email"] == tenant.owner.email
    assert after.json()["email"] == tenant.admin.email
    assert f"/admin/team/{tenant.member.id}/role" not in now_admin.text  # admins cannot
    assert await audit_details(container, tenant.company_id, AuditAction.OWNERSHIP_TRANSFERRED) == [
        {
            "actor": tenant.owner.id,
            "target": tenant.company_id,
            "from": tenant.owner.email,
            "to": tenant.admin.email,
            "previousOwnerId": tenant.owner.id,
            "newOwnerId": tenant.admin.id,
        }
    ]


async def test_an_admin_cannot_transfer_ownership(container: Container, tenant: Tenant) -> None:
    async with dashboard(container) as http:
        await sign_in(http, tenant.admin.email, "admin-password-1")
        answer = await post_form(
            http, f"/admin/team/{tenant.member.id}/transfer", await csrf_of(http)
        )

    assert answer.status_code == 403
    assert "Only the owner can transfer ownership" in text_of(answer.text)
    assert await role_of(container, tenant.owner.id) == "owner"


async def test_operator_set_role_and_transfer_keep_exactly_one_owner(
    container: Container, tenant: Tenant, other_tenant: Tenant
) -> None:
    company = await container.companies.resolve_company(tenant.company_id)
    made = await container.team.set_role_by_email(tenant.member.email, Role.ADMIN, Actor.cli())
    with pytest.raises(PermissionDenied):
        await container.team.set_role_by_email(tenant.owner.email, Role.MEMBER, Actor.cli())
    with pytest.raises(Conflict):
        await container.team.set_role_by_email(tenant.member.email, Role.ADMIN, Actor.cli())
    with pytest.raises(NotFound):  # another company's user
        await container.team.transfer_by_email(company, other_tenant.admin.email, Actor.cli())
    with pytest.raises(Conflict):
        await container.team.transfer_by_email(company, tenant.owner.email, Actor.cli())
    new_owner = await container.team.transfer_by_email(company, tenant.member.email, Actor.cli())

    assert made.role is Role.ADMIN
    assert new_owner.role is Role.OWNER
    assert await role_of(container, tenant.owner.id) == "admin"
    assert await owners_of(container, tenant.company_id) == 1
    assert await owners_of(container, other_tenant.company_id) == 1
    changes = await audit_details(container, tenant.company_id, AuditAction.USER_ROLE_CHANGED)
    assert changes == [
        {
            "actor": None,
            "target": tenant.member.id,
            "email": tenant.member.email,
            "from": "member",
            "to": "admin",
        }
    ]


async def test_requiring_two_factor_sends_admins_without_it_to_set_it_up(
    container: Container, tenant: Tenant
) -> None:
    async with dashboard(container) as owner, dashboard(container) as admin:
        await sign_in(owner, tenant.owner.email, "owner-password-1")
        await sign_in(admin, tenant.admin.email, "admin-password-1")
        refused = await post_form(
            admin, "/admin/team/two-factor", await csrf_of(admin), required="on"
        )
        answer = await post_form(
            owner, "/admin/team/two-factor", await csrf_of(owner), required="on"
        )
        keys = await admin.get("/admin/api-keys")
        account = await admin.get("/admin/account")

    assert refused.status_code == 403
    assert "Only the owner can change this setting" in text_of(refused.text)
    assert answer.status_code == 303
    assert keys.status_code == 303
    assert keys.headers["location"] == "/admin/account?notice=two-factor-required"
    assert account.status_code == 200
    assert "Your company requires two-factor sign-in" in text_of(account.text)
    assert await audit_details(
        container, tenant.company_id, AuditAction.TWO_FACTOR_REQUIREMENT_SET
    ) == [{"actor": tenant.owner.id, "target": tenant.company_id, "required": True}]
