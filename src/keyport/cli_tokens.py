"""`keyport token create|list|revoke|regenerate` and `keyport company set-token-policy`:
parse, call the personal access token service, print. A token is printed once, at creation.

Commands import the server lazily (the rule at the top of cli.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from keyport.cli_lifecycle import Option, Run
from keyport.domain.audit import Actor
from keyport.domain.key_events import iso_utc
from keyport.domain.personal_tokens import IssuedToken, TokenPolicy
from keyport.domain.scopes import describe as describe_scopes

if TYPE_CHECKING:
    from keyport.bootstrap import Container
    from keyport.services.keys.personal_tokens import TokenView

DEFAULT_DAYS = 30


def issued_token_json(issued: IssuedToken) -> dict[str, Any]:
    record = issued.record
    return {
        "id": record.id,
        "token": issued.token,
        "name": record.name,
        "userId": record.user_id,
        "companyId": record.company_id,
        "scopes": list(record.scopes),
        "expiresAt": iso_utc(record.expires_at) if record.expires_at else None,
    }


def _view_json(view: TokenView) -> dict[str, Any]:
    token = view.token
    return {
        "id": token.id,
        "name": token.name,
        "userId": token.user_id,
        "hint": token.hint,
        "status": view.state.value,
        "scopes": list(token.scopes),
        "createdAt": iso_utc(token.created_at),
        "expiresAt": iso_utc(token.expires_at) if token.expires_at else None,
        "lastUsedAt": iso_utc(token.last_used_at) if token.last_used_at else None,
        "lastUsedIp": token.last_used_ip,
    }


def _policy_text(policy: TokenPolicy) -> str:
    allowed = "allowed" if policy.allow else "turned off"
    longest = f"{policy.max_days} days" if policy.max_days else "no maximum"
    networks = ", ".join(policy.allowed_ips) or "anywhere"
    return f"Personal access tokens are {allowed}; lifetime: {longest}; networks: {networks}"


def _print_issued(issued: IssuedToken, as_json: bool, print_json: Callable[[Any], None]) -> None:
    if as_json:
        print_json(issued_token_json(issued))
        return
    record = issued.record
    ends = iso_utc(record.expires_at) if record.expires_at else "never"
    click.echo(f"Created personal access token {record.id} ({record.name}), expires {ends}")
    click.echo(issued.token)
    click.echo("Copy it now: it will not be shown again.", err=True)


def register(
    cli: click.Group,
    company: click.Group,
    *,
    run: Run,
    print_json: Callable[[Any], None],
    company_option: Option,
    json_option: Option,
) -> None:
    """Adds these commands to the `keyport` group; cli.py hands over its shared helpers."""

    @cli.group(help="Manage personal access tokens (a user's own credential).")
    def token() -> None:
        pass

    @token.command("create", help="Create a token for a user; it is shown once.")
    @click.option("--user", "email", required=True, help="The token's user (email).")
    @click.option("--name", required=True, help="Unique among the user's live tokens.")
    @click.option("--days", type=int, default=None, help=f"Days it lasts (default {DEFAULT_DAYS}).")
    @click.option("--no-expiry", is_flag=True, help="Never expires (if the company allows).")
    @click.option(
        "--scope",
        "scopes",
        multiple=True,
        help="A scope it holds (repeatable); default: * (all but keys:manage).",
    )
    @json_option
    def token_create(
        email: str,
        name: str,
        days: int | None,
        no_expiry: bool,
        scopes: tuple[str, ...],
        as_json: bool,
    ) -> None:
        if no_expiry and days is not None:
            raise click.UsageError("--days and --no-expiry exclude each other")
        lifetime = None if no_expiry else (days if days is not None else DEFAULT_DAYS)

        async def work(c: Container) -> IssuedToken:
            user = await c.tokens.user_by_email(email)
            return await c.tokens.issue(
                user, name=name, days=lifetime, scopes=list(scopes) or None, actor=Actor.cli()
            )

        _print_issued(run(work), as_json, print_json)

    @token.command("list", help="List tokens (never the tokens themselves).")
    @click.option("--user", "email", default=None, help="Only this user's tokens (email).")
    @company_option
    @json_option
    def token_list(email: str | None, company_id: str | None, as_json: bool) -> None:
        async def work(c: Container) -> list[TokenView]:
            owner = await c.tokens.user_by_email(email) if email else None
            if owner is not None and company_id is None:
                found, _ = await c.tokens.page(owner.company_id, owner.id, None, 10_000)
                return found
            chosen = await c.companies.resolve_company(company_id)
            found, _ = await c.tokens.page(chosen.id, owner.id if owner else None, None, 10_000)
            return found

        views = run(work)
        if as_json:
            print_json([_view_json(v) for v in views])
            return
        if not views:
            click.echo("No personal access tokens.")
            return
        click.echo(f"{'ID':36}  {'STATUS':8}  {'EXPIRES':24}  {'SCOPES':20}  NAME")
        for v in views:
            ends = iso_utc(v.token.expires_at) if v.token.expires_at else "never"
            click.echo(
                f"{v.token.id:36}  {v.state.value:8}  {ends:24}  "
                f"{describe_scopes(v.token.scopes):20}  {v.token.name}"
            )

    @token.command("revoke", help="Revoke a token for good.")
    @click.argument("token_id")
    def token_revoke(token_id: str) -> None:
        async def work(c: Container) -> Any:
            return await c.tokens.revoke(None, token_id, Actor.cli())

        revoked = run(work)
        click.echo(f"Personal access token {revoked.id} is now revoked")

    @token.command("regenerate", help="A new secret for a token; the old one is revoked.")
    @click.argument("token_id")
    @json_option
    def token_regenerate(token_id: str, as_json: bool) -> None:
        async def work(c: Container) -> IssuedToken:
            return await c.tokens.regenerate(None, token_id, Actor.cli())

        _print_issued(run(work), as_json, print_json)

    @company.command("set-token-policy", help="Personal access tokens: on or off, lifetime, IPs.")
    @click.option("--allow/--deny", "allow", default=None, help="Allow tokens, or turn them off.")
    @click.option("--max-days", default=None, help="Longest lifetime of a new token, or `none`.")
    @click.option(
        "--allow-ip",
        "allowed_ips",
        multiple=True,
        help="A network every token may be used from (repeatable); `any` for anywhere.",
    )
    @company_option
    def company_set_token_policy(
        allow: bool | None,
        max_days: str | None,
        allowed_ips: tuple[str, ...],
        company_id: str | None,
    ) -> None:
        longest: object = ...
        if max_days is not None:
            text = max_days.strip().lower()
            if text != "none" and not (text.isascii() and text.isdigit()):
                raise click.BadParameter("a whole number of days, or none", param_hint="--max-days")
            longest = None if text == "none" else int(text)
        networks = None
        if allowed_ips:
            networks = [] if list(allowed_ips) == ["any"] else list(allowed_ips)

        async def work(c: Container) -> Any:
            chosen = await c.companies.resolve_company(company_id)
            return await c.tokens.set_policy(
                chosen.id, Actor.cli(), allow=allow, max_days=longest, allowed_ips=networks
            )

        outcome = run(work)
        click.echo(_policy_text(outcome.policy))
        for token in outcome.longer:
            ends = iso_utc(token.expires_at) if token.expires_at else "never"
            click.echo(f"Outlives the maximum (keeps its expiry): {token.id} {token.name} {ends}")
