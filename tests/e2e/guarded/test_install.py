"""`pip install ./clients/python` into a fresh environment: keyport-client and httpx, nothing of
the server, and every integration imports from there."""

from __future__ import annotations

from tests.support.client_venv import ClientVenv

# httpx and what it needs. Nothing else may come with keyport-client.
ALLOWED = {
    "keyport-client",
    "httpx",
    "httpcore",
    "anyio",
    "idna",
    "certifi",
    "h11",
    "sniffio",
    "typing-extensions",
    "typing_extensions",
    "exceptiongroup",
    "pip",
    "setuptools",
}
SERVER = {
    "keyport",
    "litestar",
    "sqlalchemy",
    "redis",
    "uvicorn",
    "alembic",
    "asyncpg",
    "aiosqlite",
    "msgspec",
    "jinja2",
    "argon2-cffi",
    "click",
    "cryptography",
}


def test_it_installs_httpx_and_nothing_of_the_server(client_venv: ClientVenv) -> None:
    assert "keyport-client" in client_venv.installed
    assert "httpx" in client_venv.installed
    assert set(client_venv.installed) <= ALLOWED, set(client_venv.installed) - ALLOWED
    assert not set(client_venv.installed) & SERVER


def test_the_apps_use_the_installed_package_not_the_servers(client_venv: ClientVenv) -> None:
    found = client_venv.run(
        "import keyport_client, keyport_client.asgi, keyport_client.fastapi, "
        "keyport_client.django, keyport_client.flask; print(keyport_client.__file__)"
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.startswith(str(client_venv.site_packages / "keyport_client"))
    server = client_venv.run("import keyport")
    assert server.returncode != 0 and "No module named 'keyport'" in server.stderr


def test_it_is_typed(client_venv: ClientVenv) -> None:
    assert (client_venv.site_packages / "keyport_client" / "py.typed").exists()
