"""The audit log: /admin/audit (filtered, paginated) and /admin/audit.csv (the same, exported).

Filters come from the query string (`actor`, `action`, `key`), so a filtered view can be
bookmarked and shared; the company always comes from the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated
from urllib.parse import urlencode

from litestar import Response, get
from litestar.params import QueryParameter
from litestar.types import RouteHandlerType

from keyport.domain.audit import AuditAction
from keyport.domain.clock import Clock
from keyport.domain.users import User
from keyport.services.audit.company_log import AuditChoices, AuditLog, AuditQuery
from keyport.web.admin.access import AnyRequest, DashboardAccess
from keyport.web.admin.audit_views import Names, audit_csv, audit_row
from keyport.web.admin.rendering import Pages
from keyport.web.admin.view_models import person, zone_of
from keyport.web.admin.words import ACTION_WORDS

PAGE_SIZE = 50
Page = Annotated[int, QueryParameter(ge=1, le=100_000)]
_ACTIONS = frozenset(a.value for a in AuditAction)


def _query(request: AnyRequest) -> AuditQuery:
    action = request.query_params.get("action") or None
    return AuditQuery(
        action=action if action in _ACTIONS else None,
        actor_user_id=(request.query_params.get("actor") or "")[:64] or None,
        key_id=(request.query_params.get("key") or "")[:64] or None,
    )


def _query_string(query: AuditQuery, **extra: int) -> str:
    pairs = {"actor": query.actor_user_id, "action": query.action, "key": query.key_id, **extra}
    return urlencode({name: value for name, value in pairs.items() if value})


def _names(choices: AuditChoices, people: Mapping[str, User]) -> Names:
    return Names({**{u.id: u for u in choices.actors}, **people}, {k.id: k for k in choices.keys})


def audit_handlers(
    audit_log: AuditLog, access: DashboardAccess, pages: Pages, clock: Clock
) -> list[RouteHandlerType]:
    @get("/audit", name="admin-audit")
    async def audit(request: AnyRequest, page: Page = 1) -> Response[str]:
        visitor = await access.visitor(request)
        query = _query(request)
        found = await audit_log.page(
            visitor.user, query, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        choices = await audit_log.choices(visitor.user)
        names = _names(choices, found.people)
        zone = zone_of(visitor.user)
        pages_total = max(1, (found.total + PAGE_SIZE - 1) // PAGE_SIZE)
        return pages.render(
            request,
            "audit.html",
            rows=[audit_row(e, zone, names) for e in found.events],
            total=found.total,
            page=page,
            pages=pages_total,
            query=query,
            filtered=bool(query.action or query.actor_user_id or query.key_id),
            actors=[(u.id, person(u)) for u in choices.actors],
            actions=sorted(ACTION_WORDS.items(), key=lambda item: item[1]),
            keys=[(k.id, k.name or f"Untitled key {k.id[:8]}…") for k in choices.keys],
            previous_url=f"/admin/audit?{_query_string(query, page=page - 1)}",
            next_url=f"/admin/audit?{_query_string(query, page=page + 1)}",
            export_url=f"/admin/audit.csv?{_query_string(query)}",
        )

    @get("/audit.csv", name="admin-audit-csv")
    async def export(request: AnyRequest) -> Response[str]:
        visitor = await access.visitor(request)
        found = await audit_log.export(visitor.user, _query(request))
        choices = await audit_log.choices(visitor.user)
        filename = f"keyport-audit-{clock.now():%Y%m%d-%H%M%S}.csv"
        return Response(
            audit_csv(found.events, _names(choices, found.people)),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return [audit, export]
