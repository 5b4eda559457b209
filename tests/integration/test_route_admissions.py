"""Every route under an API prefix declares what admits a request to it, and the gate asks the
framework's own router which route that is: a route added without a declaration stops the
application at start, and no spelling of a path (case, a trailing slash) reads a route's
declaration differently from the router."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.web.app import create_app
from keyport.web.gate import ANY_CREDENTIAL, SIGNATURE, Admission, ApiGate
from keyport.web.route_admissions import UndeclaredAdmission, route_admissions
from tests.conftest import Tenant


def forbidden(message: str) -> dict[str, Any]:
    return {"statusCode": 403, "message": message, "error": "Forbidden"}


async def test_a_guarded_route_without_a_declared_admission_stops_the_app_at_start(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    @get("/v1/reports", sync_to_thread=False)
    def undeclared() -> str:
        return "every key would read this"

    @get("/v1/declared", opt=Admission.needing("reports:read").opt, sync_to_thread=False)
    def declared() -> str:
        return "fine"

    @get("/elsewhere", sync_to_thread=False)
    def unguarded() -> str:
        return "no key needed here"

    with pytest.raises(UndeclaredAdmission, match="GET /v1/reports"):
        route_admissions(Litestar([undeclared, declared, unguarded]))
    route_admissions(Litestar([declared, unguarded]))  # all declared: it starts

    # The application itself is built the same way: an undeclared route stops create_app.
    import keyport.web.app as app_module
    from keyport.web.ops import ops_router as routers

    def with_undeclared(*args: Any, **kwargs: Any) -> Any:
        router = routers(*args, **kwargs)
        router.register(undeclared)
        return router

    monkeypatch.setattr(app_module, "ops_router", with_undeclared)
    with pytest.raises(UndeclaredAdmission, match="GET /v1/reports"):
        create_app(container, run_background=False)


async def test_the_applications_routes_all_declare_what_admits_them(container: Container) -> None:
    create_app(container, run_background=False)  # would raise UndeclaredAdmission


async def test_another_case_of_a_path_never_skips_its_routes_scope(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    reader = await container.keys.issue_key(
        tenant.company_id, name="reader", days=30, actor=Actor.cli(), scopes=["users:read"]
    )
    auth = {"Authorization": f"Bearer {reader.key}"}
    listed = await client.get("/v1/keys", headers=auth)
    assert listed.json() == forbidden("Insufficient scope: requires keys:manage")
    for spelling in ("/V1/keys", "/v1/KEYS", "/V1/KEYS/"):
        answer = await client.get(spelling, headers=auth)
        assert answer.status_code == 404, spelling  # no route: nothing answered, nothing shown
    slash = await client.get("/v1/keys/", headers=auth)  # the router's route: its scope
    assert slash.json() == forbidden("Insufficient scope: requires keys:manage")


async def test_methods_a_route_does_not_serve_are_admitted_as_its_read(
    client: httpx.AsyncClient, container: Container, tenant: Tenant
) -> None:
    writer = await container.keys.issue_key(
        tenant.company_id, name="writer", days=30, actor=Actor.cli(), scopes=["users:write"]
    )
    auth = {"Authorization": f"Bearer {writer.key}"}
    for method in ("HEAD", "OPTIONS", "PUT"):
        answer = await client.request(method, "/v4/user/me", headers=auth)
        assert answer.status_code == 403, method
    reader = await container.keys.issue_key(
        tenant.company_id, name="reader", days=30, actor=Actor.cli(), scopes=["users:read"]
    )
    options = await client.options("/v4/user/me", headers={"Authorization": f"Bearer {reader.key}"})
    assert options.status_code == 204


async def test_a_route_admitted_by_its_own_signature_needs_no_credential(
    container: Container, tenant: Tenant
) -> None:
    from keyport.web.api.context import require_principal

    @post("/v1/leaks", opt=SIGNATURE.opt, status_code=200, sync_to_thread=False)
    def report_leak() -> str:
        return "checked its own signature"

    @get("/v1/anything", opt=ANY_CREDENTIAL.opt, sync_to_thread=False)
    def anything() -> str:
        return "any key"

    framework = Litestar([report_leak, anything], guards=[require_principal])
    gate = ApiGate(framework, container.authenticator, admission_of=route_admissions(framework))
    transport = httpx.ASGITransport(app=gate, client=("203.0.113.7", 1))
    async with httpx.AsyncClient(transport=transport, base_url="http://keyport.test") as http:
        leak = await http.post("/v1/leaks")
        assert (leak.status_code, leak.text) == (200, "checked its own signature")
        assert (await http.get("/v1/anything")).status_code == 401
        keyed = await http.get("/v1/anything", headers=tenant.auth())
        assert (keyed.status_code, keyed.text) == (200, "any key")
