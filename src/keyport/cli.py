"""The `keyport` command: serve, init, user, key, db, scan. Thin: parse, call a service, print.

Rule for every command module (this one, cli_lifecycle.py, and any added beside them):
commands import the server lazily. At import time a command module may load only the
standard library, click, keyport.domain and keyport.proxy_config; keyport.config,
keyport.bootstrap, the services, keyport.web, keyport.db, msgspec, uvicorn and the like are
imported inside the function that needs them (types for annotations under TYPE_CHECKING).
So `keyport --help`, a typo'd option and `keyport proxy-config` answer without loading
SQLAlchemy, Alembic, Redis or Litestar (~0.6 s). tests/unit/test_cli_imports.py checks it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from keyport.cli_lifecycle import key_company, register
from keyport.cli_tokens import register as register_tokens
from keyport.domain.audit import Actor
from keyport.domain.errors import KeyportError, ValidationFailed
from keyport.domain.key_events import iso_utc
from keyport.domain.keys import ApiKey, IssuedKey
from keyport.domain.scopes import describe as describe_scopes
from keyport.domain.users import NewUser, Role

if TYPE_CHECKING:
    from keyport.bootstrap import Container
    from keyport.config import Settings
    from keyport.services.accounts.invitations import IssuedInvitation

T = TypeVar("T")
DEMO_COMPANY = "Demo Company"
DEMO_OWNER_EMAIL = "owner@example.com"


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"keyport: {message}", err=True)
    sys.exit(code)


# A service's field → the parameters of a command that may carry it (the first one the
# running command has is named in the message: `--days must be between 1 and 90 days.`).
_FIELD_PARAMETERS = {
    "expiresInDays": ("days",),
    "rateLimit": ("rate_limit", "limit"),
    "scopes": ("scopes",),
    "allowedIps": ("allowed_ips", "networks"),
    "name": ("name",),
    "gracePeriodSeconds": ("grace",),
    "events": ("events",),
    "url": ("url",),
    "email": ("email", "owner_email"),
    "givenName": ("given_name", "owner_given_name"),
    "familyName": ("family_name", "owner_family_name"),
    "timezone": ("timezone",),
    "password": ("password", "owner_password"),
    "role": ("role",),
    "company": ("company_name",),
    "company-id": ("company_id",),
}


def _describe(error: KeyportError) -> str:
    """One line: a refused field as plain sentences naming the command's own option."""
    if not isinstance(error, ValidationFailed):
        return error.message
    return " ".join(f"{_option_for(e.field)} {e.message}." for e in error.errors)


def _option_for(field: str) -> str:
    context = click.get_current_context(silent=True)
    parameters = {p.name: p for p in context.command.params} if context else {}
    for name in _FIELD_PARAMETERS.get(field, ()):
        parameter = parameters.get(name)
        if isinstance(parameter, click.Option):
            return max(parameter.opts, key=len)
        if parameter is not None:
            return parameter.human_readable_name
    return field


def _run(work: Callable[[Container], Awaitable[T]], *, creates: bool = False) -> T:
    """Build the container, migrate the database if needed, run `work`, close everything.

    Only a command that `creates` (init, serve) may make a database that is not there yet;
    any other refuses with where it looked, instead of leaving an empty one behind."""
    import asyncio

    from keyport.bootstrap import build_container

    settings = _settings()
    if creates:
        _prepare_data_directory(settings)
    else:
        _require_database(settings)

    async def main() -> T:
        container = build_container(settings)
        try:
            await container.migrate()
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except KeyportError as error:
        _fail(_describe(error))
    except OSError as error:
        _fail(f"cannot reach the database: {error}", code=1)


def _require_database(settings: Settings) -> None:
    """Exit 2, creating nothing, when the SQLite database the settings name does not exist."""
    from keyport.db.secret_file import sqlite_file

    found = sqlite_file(settings.database)
    if found is None or found.exists():
        return
    chosen_by = (
        "KEYPORT_DATABASE_URL"
        if settings.database_url is not None
        else "the data directory, KEYPORT_DATA_DIR"
        if settings.data_dir
        else "the default data directory"
    )
    _fail(
        f"no Keyport database at {found} ({chosen_by}). Create one there with "
        "`keyport init` or `keyport serve`, or point to yours with KEYPORT_DATA_DIR=DIR "
        "(the folder holding keyport.db) or KEYPORT_DATABASE_URL=URL."
    )


def _prepare_data_directory(settings: Settings) -> None:
    """Create the data directory (0700) when the database or the secret will live in it, and
    say where it is (on stderr: stdout may be JSON)."""
    from keyport.db.secret_file import sqlite_file

    database = sqlite_file(settings.database)
    in_data_directory = settings.database_url is None
    secret_there = settings.secret_key is None and settings.secret_key_file is None
    if not in_data_directory and not (secret_there and database is None):
        return
    from keyport.db.secret_file import create_private_directory

    created = create_private_directory(settings.data_path)
    what = "database and server secret" if in_data_directory else "server secret"
    click.echo(
        f"Keyport data ({what}): {settings.data_path}" + (" (created)" if created else ""),
        err=True,
    )


def _settings() -> Settings:
    from keyport.config import Settings, SettingsError

    try:
        return Settings.from_env(os.environ)
    except SettingsError as error:
        _fail(str(error))


def issued_key_json(issued: IssuedKey) -> dict[str, Any]:
    """What `keyport key create --json` prints: the key, shown this once, and its record."""
    record = issued.record
    return {
        "id": record.id,
        "key": issued.key,
        "name": record.name,
        "expiresAt": iso_utc(record.expires_at),
        "scopes": list(record.scopes),
        "allowedIps": list(record.allowed_ips),
    }


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _key_json(key: ApiKey, now: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "hint": key.hint,
        "status": key.status.value,
        "state": key.state(now).value,
        "expiresAt": iso_utc(key.expires_at),
        "createdAt": iso_utc(key.created_at),
        "createdBy": key.created_by,
        "lastUsedAt": iso_utc(key.last_used_at) if key.last_used_at else None,
        "lastUsedIp": key.last_used_ip,
        "rateLimit": key.rate_limit,
        "scopes": list(key.scopes),
        "allowedIps": list(key.allowed_ips),
    }


EXAMPLES = """\b
Examples:
  keyport serve                                  # the dashboard and the API on :8000
  keyport init --company Acme --owner-email you@acme.example
  keyport key create --name "CRM sync" --days 30 --scope users:read
  keyport key list
  keyport key rotate KEY_ID --grace 1h
  keyport webhook add https://hooks.acme.example/keyport --event api_key.expiring
  keyport proxy-config nginx --listen 0.0.0.0:8080 --keyport http://127.0.0.1:8000 \\
      --upstream http://127.0.0.1:9000

\b
Data: the SQLite database and the server secret live in one data directory,
KEYPORT_DATA_DIR, else $XDG_DATA_HOME/keyport, else ~/.local/share/keyport
(KEYPORT_DATABASE_URL points elsewhere). `keyport COMMAND --help` for more."""


@click.group(
    help="Keyport: platform API keys compatible with the meetergo v4 model.",
    epilog=EXAMPLES,
    context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="keyport", message="keyport %(version)s")
def cli() -> None:
    pass


company_option = click.option(
    "--company-id",
    default=None,
    help="The company; may be left out when only one exists (or the command names a key).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@cli.command(help="Run the HTTP service (migrates the database first).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    async def prepare(container: Container) -> str | None:
        if await container.companies.list_companies(limit=1):
            return None
        password = secrets.token_urlsafe(12)
        await container.companies.create_company(
            DEMO_COMPANY,
            NewUser(DEMO_OWNER_EMAIL, "Demo", "Owner", "UTC"),
            Actor.cli(),
            owner_password=password,
        )
        return password

    password = _run(prepare, creates=True)
    base = f"http://{'localhost' if host in {'127.0.0.1', '0.0.0.0'} else host}:{port}"  # noqa: S104
    click.echo(f"Keyport dashboard: {base}/admin/api-keys")
    if password is not None:
        click.echo(
            f"First start: created {DEMO_COMPANY!r}. Sign in as {DEMO_OWNER_EMAIL} "
            f"with password {password}"
        )
        click.echo("  (shown once; change it with `keyport user set-password`)")
    click.echo(f"API: {base}/v4/user/me   docs: {base}/schema   OpenAPI: {base}/openapi.json")
    # Invitation links start with KEYPORT_PUBLIC_URL; unset, with the address printed above
    # (the workers read it from the environment they inherit).
    if not os.environ.get("KEYPORT_PUBLIC_URL"):
        os.environ["KEYPORT_PUBLIC_URL"] = base
    settings = _settings()
    # uvicorn shuts down gracefully on SIGTERM (stops accepting, finishes requests in flight,
    # runs the lifespan end that writes usage), then raises SIGTERM again so that the default
    # action kills the process. A clean shutdown should exit 0: that second SIGTERM is ignored.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: None)
    # The workers share their metrics through a directory of this run only: /metrics on any
    # of them reports the whole server (services/observability/metrics_sharing.py).
    own_metrics_dir = None
    if workers > 1 and not settings.metrics_dir:
        own_metrics_dir = tempfile.mkdtemp(prefix="keyport-metrics-")
        os.environ["KEYPORT_METRICS_DIR"] = own_metrics_dir
    try:
        _serve(host, port, workers, settings)
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)


def _serve(host: str, port: int, workers: int, settings: Settings) -> None:
    import uvicorn

    uvicorn.run(
        "keyport.web.asgi:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="keyport.web.http_protocol:KeyportHttpProtocol",
        proxy_headers=False,  # the gate decides whom to believe (KEYPORT_TRUSTED_PROXIES)
        access_log=settings.access_log,
        log_level="warning",
        timeout_graceful_shutdown=10,
        server_header=False,
    )


@cli.command(help="Create a company and its owner.")
@click.option("--company", "company_name", required=True, help="Company name.")
@click.option("--owner-email", required=True)
@click.option("--owner-password", default=None, help="Dashboard password (at least 10 chars).")
@click.option("--owner-given-name", default="Account", show_default=True)
@click.option("--owner-family-name", default="Owner", show_default=True)
@json_option
def init(
    company_name: str,
    owner_email: str,
    owner_password: str | None,
    owner_given_name: str,
    owner_family_name: str,
    as_json: bool,
) -> None:
    owner = NewUser(owner_email, owner_given_name, owner_family_name, "UTC")
    created = _run(
        lambda c: c.companies.create_company(
            company_name, owner, Actor.cli(), owner_password=owner_password
        ),
        creates=True,
    )
    if as_json:
        _print_json({"companyId": created.company.id, "ownerId": created.owner.id})
    else:
        click.echo(
            f"Created company {created.company.name} ({created.company.id}) "
            f"with owner {created.owner.email} ({created.owner.id})"
        )


@cli.group(help="Manage users.")
def user() -> None:
    pass


@user.command("create", help="Create a user in a company.")
@click.option("--email", required=True)
@click.option("--given-name", required=True)
@click.option("--family-name", required=True)
@click.option(
    "--role", type=click.Choice(["member", "admin", "owner"]), default="member", show_default=True
)
@click.option("--timezone", default="Europe/Berlin", show_default=True)
@click.option("--password", default=None, help="Dashboard password (at least 10 chars).")
@company_option
@json_option
def user_create(
    email: str,
    given_name: str,
    family_name: str,
    role: str,
    timezone: str,
    password: str | None,
    company_id: str | None,
    as_json: bool,
) -> None:
    new_user = NewUser(email, given_name, family_name, timezone, role=Role(role))

    async def work(c: Container) -> Any:
        company = await c.companies.resolve_company(company_id)
        return await c.users.create_user(company.id, new_user, Actor.cli(), password=password)

    created = _run(work)
    if as_json:
        _print_json(json.loads(_encode_user(created)))
    else:
        click.echo(f"Created {created.role.value} {created.email} ({created.id})")


def _encode_user(created: Any) -> bytes:
    import msgspec

    from keyport.web.api.schemas import UserOut

    return msgspec.json.encode(UserOut.of(created))


@user.command("set-password", help="Set or reset a user's dashboard password.")
@click.option("--email", required=True)
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when left out.",
)
def user_set_password(email: str, password: str) -> None:
    changed = _run(lambda c: c.users.set_password(email, password, Actor.cli()))
    click.echo(f"Password set for {changed.email}")


@user.command("invite", help="Invite someone to the dashboard: prints a one-time link.")
@click.argument("email")
@click.option("--role", type=click.Choice(["member", "admin"]), required=True)
@click.option("--given-name", default="", help="Optional; the invitee can change it.")
@click.option("--family-name", default="", help="Optional; the invitee can change it.")
@company_option
@json_option
def user_invite(
    email: str,
    role: str,
    given_name: str,
    family_name: str,
    company_id: str | None,
    as_json: bool,
) -> None:
    from keyport.services.accounts.invitations import Invitee

    invitee = Invitee(email, Role(role), given_name, family_name)

    async def work(c: Container) -> IssuedInvitation:
        company = await c.companies.resolve_company(company_id)
        return await c.invitations.invite_to(company.id, invitee, Actor.cli())

    issued = _run(work)
    if as_json:
        _print_json({"id": issued.user.id, "inviteUrl": issued.url})
    else:
        click.echo(f"Invited {issued.user.email} as {issued.user.role.value} ({issued.user.id})")
        click.echo(f"One-time link, valid for 72 hours: {issued.url}")


@user.command("set-role", help="Make a user an admin or a member (not the owner).")
@click.argument("email")
@click.argument("role", type=click.Choice(["member", "admin"]))
def user_set_role(email: str, role: str) -> None:
    changed = _run(lambda c: c.team.set_role_by_email(email, Role(role), Actor.cli()))
    click.echo(f"{changed.email} is now {changed.role.value}")


@user.command("reset-2fa", help="Turn off a user's two-factor sign-in and end their sessions.")
@click.argument("email")
def user_reset_2fa(email: str) -> None:
    changed = _run(lambda c: c.two_factor.reset(email, Actor.cli()))
    click.echo(f"Two-factor sign-in is off for {changed.email}; their sessions have ended")


@cli.group(help="Manage companies.")
def company() -> None:
    pass


@company.command("transfer-ownership", help="Make another user of the company its owner.")
@click.option("--to", "email", required=True, help="The new owner's email.")
@company_option
def company_transfer_ownership(email: str, company_id: str | None) -> None:
    async def work(c: Container) -> Any:
        found = await c.companies.resolve_company(company_id)
        return await c.team.transfer_by_email(found, email, Actor.cli())

    new_owner = _run(work)
    click.echo(f"{new_owner.email} now owns the company; the previous owner is an admin")


@cli.group(help="Manage API keys.")
def key() -> None:
    pass


rate_limit_help = (
    "Requests a minute for this key (bursts scale alike); default: KEYPORT_RATE_LIMIT."
)


@key.command("create", help="Issue a key; it is shown once.")
@click.option("--name", default=None, help="Optional, up to 100 characters.")
@click.option("--days", required=True, type=int, help="Days until it expires, 1 to 90.")
@click.option("--rate-limit", type=int, default=None, help=rate_limit_help)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="A scope the key holds (repeatable): users:read, users:write, keys:manage, "
    "name:action; default: * (full access).",
)
@click.option(
    "--allow-ip",
    "allowed_ips",
    multiple=True,
    help="An IPv4/IPv6 network the key may be used from (repeatable); default: anywhere.",
)
@company_option
@json_option
def key_create(
    name: str | None,
    days: int,
    rate_limit: int | None,
    scopes: tuple[str, ...],
    allowed_ips: tuple[str, ...],
    company_id: str | None,
    as_json: bool,
) -> None:
    async def work(c: Container) -> Any:
        company = await c.companies.resolve_company(company_id)
        return await c.keys.issue_key(
            company.id,
            name=name,
            days=days,
            actor=Actor.cli(),
            rate_limit=rate_limit,
            scopes=list(scopes) or None,
            allowed_ips=list(allowed_ips),
        )

    issued = _run(work)
    record = issued.record
    if as_json:
        _print_json(issued_key_json(issued))
        return
    click.echo(
        f"Created API key {record.id}"
        + (f" ({record.name})" if record.name else "")
        + f", expires {iso_utc(record.expires_at)}"
    )
    click.echo(issued.key)
    click.echo("Copy it now: it will not be shown again.", err=True)


@key.command("list", help="List a company's keys (never their secrets).")
@company_option
@json_option
def key_list(company_id: str | None, as_json: bool) -> None:
    async def work(c: Container) -> Any:
        company = await c.companies.resolve_company(company_id)
        page = await c.keys.list_keys(company.id, limit=10_000)
        return page, c.clock.now()

    page, now = _run(work)
    if as_json:
        _print_json([_key_json(k, now) for k in page.keys])
        return
    if not page.keys:
        click.echo("No API keys yet: create one with `keyport key create --days 30`.")
        return
    click.echo(f"{'ID':36}  {'STATE':11}  {'EXPIRES':24}  {'SCOPES':20}  NAME")
    for k in page.keys:
        click.echo(
            f"{k.id:36}  {k.state(now).value:11}  {iso_utc(k.expires_at):24}  "
            f"{describe_scopes(k.scopes):20}  {k.name or '-'}"
        )


def _key_change(verb: str, change: Callable[[Container, str, str], Awaitable[ApiKey]]) -> Any:
    @key.command(verb, help=f"{verb.capitalize()} a key.")
    @click.argument("key_id")
    @company_option
    def command(key_id: str, company_id: str | None) -> None:
        async def work(c: Container) -> ApiKey:
            return await change(c, await key_company(c, company_id, key_id), key_id)

        changed = _run(work)
        click.echo(f"API key {changed.id} is now {changed.status.value}")

    return command


@key.command("set-limit", help="Set a key's own rate limit, or `default` to follow the setting.")
@click.argument("key_id")
@click.argument("limit")
@company_option
def key_set_limit(key_id: str, limit: str, company_id: str | None) -> None:
    wanted = None if limit.strip().lower() == "default" else _whole_number(limit, "LIMIT")

    async def work(c: Container) -> ApiKey:
        company = await key_company(c, company_id, key_id)
        return await c.keys.set_rate_limit(company, key_id, wanted, Actor.cli())

    changed = _run(work)
    described = f"{changed.rate_limit} requests a minute" if changed.rate_limit else "the default"
    click.echo(f"API key {changed.id} is now limited to {described}")


@key.command("set-scopes", help="Replace a key's scopes (`*` for full access).")
@click.argument("key_id")
@click.argument("scopes", nargs=-1, required=True)
@company_option
def key_set_scopes(key_id: str, scopes: tuple[str, ...], company_id: str | None) -> None:
    async def work(c: Container) -> ApiKey:
        company = await key_company(c, company_id, key_id)
        return await c.keys.set_scopes(company, key_id, list(scopes), Actor.cli())

    changed = _run(work)
    click.echo(f"API key {changed.id} now holds: {describe_scopes(changed.scopes)}")


@key.command("set-allowed-ips", help="Replace the networks a key may be used from; none: anywhere.")
@click.argument("key_id")
@click.argument("networks", nargs=-1)
@company_option
def key_set_allowed_ips(key_id: str, networks: tuple[str, ...], company_id: str | None) -> None:
    async def work(c: Container) -> ApiKey:
        company = await key_company(c, company_id, key_id)
        return await c.keys.set_allowed_ips(company, key_id, list(networks), Actor.cli())

    changed = _run(work)
    where = " ".join(changed.allowed_ips) or "anywhere"
    click.echo(f"API key {changed.id} may now be used from: {where}")


def _whole_number(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        _fail(f"{name} must be a whole number or 'default', not {text!r}")


_key_change("deactivate", lambda c, co, k: c.keys.deactivate_key(co, k, Actor.cli()))
_key_change("activate", lambda c, co, k: c.keys.activate_key(co, k, Actor.cli()))
_key_change("revoke", lambda c, co, k: c.keys.revoke_key(co, k, Actor.cli()))


@cli.command(
    "proxy-config",
    short_help="Print an nginx or Caddy config that guards a service.",
    help="Print an nginx or Caddy configuration that asks Keyport about every request "
    "before passing it to UPSTREAM (see docs/gateway.md).",
)
@click.argument("proxy", type=click.Choice(["nginx", "caddy"]))
@click.option("--listen", required=True, help="HOST:PORT the proxy listens on.")
@click.option(
    "--keyport", "keyport_url", required=True, help="Keyport's URL, e.g. http://127.0.0.1:8000."
)
@click.option("--upstream", required=True, help="The guarded service's URL.")
@click.option(
    "--scope",
    "rules",
    multiple=True,
    help="PATH_PREFIX=SCOPE (repeatable): requests under the prefix need the scope; "
    "the longest matching prefix decides.",
)
@click.option(
    "--allow-encoded-slash",
    "encoded_slash_prefixes",
    multiple=True,
    metavar="PATH_PREFIX",
    help="Pass on paths with an encoded slash (%2F) under this prefix (repeatable); "
    "elsewhere they are refused with 400.",
)
@click.option(
    "--forward-authorization",
    is_flag=True,
    help="Pass the caller's Authorization header on to UPSTREAM (by default it stays at "
    "the proxy).",
)
def proxy_config(
    proxy: str,
    listen: str,
    keyport_url: str,
    upstream: str,
    rules: tuple[str, ...],
    encoded_slash_prefixes: tuple[str, ...],
    forward_authorization: bool,
) -> None:
    from keyport.proxy_config.caddy import render_caddy
    from keyport.proxy_config.nginx import render_nginx
    from keyport.proxy_config.spec import SpecError, build_spec

    try:
        spec = build_spec(
            listen, keyport_url, upstream, rules, encoded_slash_prefixes, forward_authorization
        )
    except SpecError as error:
        _fail(str(error))
    render = render_nginx if proxy == "nginx" else render_caddy
    click.echo(render(spec), nl=False)


@cli.group(help="Database maintenance.")
def db() -> None:
    pass


@db.command("upgrade", help="Create or migrate the schema to the newest version.")
def db_upgrade() -> None:
    async def nothing(_: Container) -> None:
        return None

    _run(nothing)
    click.echo("Database is up to date.")


@cli.command(
    short_help="Find leaked keys and tokens in files.",
    help="Find leaked Keyport keys and personal access tokens (valid checksum).",
)
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def scan(paths: tuple[Path, ...]) -> None:
    from keyport.scan import scan_paths

    found = 0
    for location, what in scan_paths(paths):
        found += 1
        click.echo(f"{location}: Keyport {what}")
    if found:
        click.echo(
            f"{found} credential(s) found: revoke them with `keyport key revoke ID` "
            "(keys) or `keyport token list` and `keyport token revoke ID` (tokens).",
            err=True,
        )
        sys.exit(1)


@cli.group(help="Leaked credentials: what to look for.")
def leaks() -> None:
    pass


@leaks.command(
    "pattern",
    help="Print the exact regular expressions of Keyport's keys and personal access tokens "
    "(for GitHub custom patterns, gitleaks or trufflehog). The last six characters are a "
    "base62 CRC32 of the rest, so a match with a wrong checksum is not a Keyport credential.",
)
def leaks_pattern() -> None:
    from keyport.domain.leaks import patterns

    for name, expression in patterns().items():
        click.echo(f"{name}: {expression}")


register(
    cli,
    key,
    run=_run,
    print_json=_print_json,
    company_option=company_option,
    json_option=json_option,
)
register_tokens(
    cli,
    company,
    run=_run,
    print_json=_print_json,
    company_option=company_option,
    json_option=json_option,
)


def main() -> None:
    """Entry point: every error is one line on stderr; bad input exits 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        _fail("aborted", code=1)
    except click.ClickException as error:
        _fail(error.format_message(), code=error.exit_code)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
