"""The example apps of docs/python/ are the files tests/e2e/guarded/ runs, word for word."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "clients" / "python" / "examples"


@pytest.mark.parametrize(
    ("page", "example"),
    [
        ("fastapi.md", "fastapi_app.py"),
        ("django.md", "django_app.py"),
        ("flask.md", "flask_app.py"),
    ],
)
def test_each_page_shows_its_tested_example_whole(page: str, example: str) -> None:
    text = (REPO / "docs" / "python" / page).read_text()
    code = (EXAMPLES / example).read_text()
    assert f"```python\n{code}```\n" in text


def test_the_client_needs_nothing_the_server_does_not_install() -> None:
    """The server's environment holds keyport_client from the same source (its pyproject's
    package list), so every dependency of the client must be one of the server's too."""
    import tomllib

    def names(path: Path) -> set[str]:
        project = tomllib.loads(path.read_text())["project"]
        return {
            dep.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
            for dep in project["dependencies"]
        }

    assert names(REPO / "clients" / "python" / "pyproject.toml") <= names(REPO / "pyproject.toml")
