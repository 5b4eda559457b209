"""`keyport key rotate` and `keyport webhook add|list|remove`: parse, call a service, print.

Commands import the server lazily (the rule at the top of cli.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import click

from keyport.domain.audit import Actor
from keyport.domain.key_events import iso_utc
from keyport.domain.rotation import parse_duration

if TYPE_CHECKING:
    from keyport.bootstrap import Container
    from keyport.services.keys.lifecycle import RotatedKey


async def key_company(c: Container, company_id: str | None, key_id: str) -> str:
    """The company named, else the key's own: key ids are unique across companies."""
    if company_id is not None:
        return (await c.companies.resolve_company(company_id)).id
    return await c.keys.company_of_key(key_id)


Run = Callable[[Callable[["Container"], Awaitable[Any]]], Any]
Option = Callable[[Callable[..., Any]], Callable[..., Any]]


def register(
    cli: click.Group,
    key: click.Group,
    *,
    run: Run,
    print_json: Callable[[Any], None],
    company_option: Option,
    json_option: Option,
) -> None:
    """Adds these commands to the `keyport` group; cli.py hands over its shared helpers."""
    _run, _print_json = run, print_json

    @key.command("rotate", help="Replace a key by a new one; the old one works for the grace.")
    @click.argument("key_id")
    @click.option("--grace", default="0", show_default=True, help="30s, 15m, 1h, 7d or seconds.")
    @click.option(
        "--days",
        type=int,
        default=None,
        help="Days the new key lasts (default: the old one's lifetime).",
    )
    @company_option
    @json_option
    def key_rotate(
        key_id: str, grace: str, days: int | None, company_id: str | None, as_json: bool
    ) -> None:
        async def work(c: Container) -> RotatedKey:
            grace_seconds = parse_duration(grace)
            company = await key_company(c, company_id, key_id)
            return await c.keys.rotate_key(
                company, key_id, Actor.cli(), grace_period_seconds=grace_seconds, days=days
            )

        rotated = _run(work)
        record = rotated.issued.record
        if as_json:
            _print_json(
                {
                    "id": record.id,
                    "key": rotated.issued.key,
                    "name": record.name,
                    "expiresAt": iso_utc(record.expires_at),
                    "previousKeyId": rotated.previous.id,
                }
            )
            return
        click.echo(
            f"Created API key {record.id}, expires {iso_utc(record.expires_at)}; "
            f"{rotated.previous.id} stops working at {iso_utc(rotated.previous.expires_at)}"
        )
        click.echo(rotated.issued.key)
        click.echo("Copy it now: it will not be shown again.", err=True)

    @cli.group(help="Webhook endpoints that receive key events.")
    def webhook() -> None:
        pass

    @webhook.command("add", help="Add an endpoint; its signing secret is shown once.")
    @click.argument("url")
    @click.option("--event", "events", multiple=True, help="An event type; default: all.")
    @company_option
    @json_option
    def webhook_add(
        url: str, events: tuple[str, ...], company_id: str | None, as_json: bool
    ) -> None:
        async def work(c: Container) -> Any:
            company = await c.companies.resolve_company(company_id)
            return await c.webhooks.add_endpoint(company.id, url, list(events), Actor.cli())

        added = _run(work)
        if as_json:
            _print_json({"id": added.endpoint.id, "secret": added.secret})
            return
        click.echo(f"Added webhook endpoint {added.endpoint.id} for {added.endpoint.url}")
        click.echo(added.secret)
        click.echo("Copy the signing secret now: it will not be shown again.", err=True)

    @webhook.command("list", help="List a company's endpoints (never their secrets).")
    @company_option
    @json_option
    def webhook_list(company_id: str | None, as_json: bool) -> None:
        async def work(c: Container) -> Any:
            company = await c.companies.resolve_company(company_id)
            return await c.webhooks.list_endpoints(company.id)

        found = _run(work)
        rows = [
            {
                "id": e.id,
                "url": e.url,
                "events": list(e.events),
                "createdAt": iso_utc(e.created_at),
                "disabledAt": iso_utc(e.disabled_at) if e.disabled_at else None,
            }
            for e in found
        ]
        if as_json:
            _print_json(rows)
            return
        if not rows:
            click.echo("No webhook endpoints: add one with `keyport webhook add URL`.")
        for row in rows:
            state = "disabled" if row["disabledAt"] else "enabled"
            events_text = ",".join(row["events"]) or "all events"
            click.echo(f"{row['id']}  {state:8}  {row['url']}  ({events_text})")

    @webhook.command("remove", help="Remove an endpoint; nothing more is sent to it.")
    @click.argument("endpoint_id")
    def webhook_remove(endpoint_id: str) -> None:
        async def work(c: Container) -> None:
            await c.webhooks.remove_endpoint(None, endpoint_id, Actor.cli())

        _run(work)
        click.echo(f"Removed webhook endpoint {endpoint_id}")
