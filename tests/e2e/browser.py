"""Driving the dashboard in Debian's Chromium: a served Keyport with two companies, and steps.

The data is made in-process through the services the CLI calls (tests.support.seed); the
browser signs in like a person would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.support.api_calls import call
from tests.support.seed import create_keys, create_user, init_company
from tests.support.server import ServerProcess

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
KEY_IN_TEXT = re.compile(r"ak_live:[0-9a-f-]{36}:[0-9A-Za-z]{50}")


@dataclass(frozen=True)
class Person:
    email: str
    password: str


@dataclass(frozen=True)
class Site:
    """A served Keyport: Acme (owner, admin, member) and Globex with one key."""

    server: ServerProcess
    database: Path
    owner: Person
    admin: Person
    member: Person
    other_company_key_id: str

    @property
    def base_url(self) -> str:
        return self.server.base_url


def populate(env: dict[str, str]) -> tuple[Person, Person, Person, str]:
    owner = Person("owner@acme.test", "owner-password-1")
    admin = Person("admin@acme.test", "admin-password-1")
    member = Person("member@acme.test", "member-password-1")
    acme = init_company(
        env,
        "Acme Robotics",
        owner.email,
        owner_password=owner.password,
        owner_given_name="Olga",
        owner_family_name="Owner",
    )["companyId"]
    for person, role, given in [(admin, "admin", "Ada"), (member, "member", "Max")]:
        create_user(
            env,
            person.email,
            given,
            role.capitalize(),
            role=role,
            password=person.password,
            company_id=acme,
        )
    create_keys(env, 1, company_id=acme, days=5, name="Staging webhook relay")
    globex = init_company(env, "Globex", "owner@globex.test", owner_password="globex-password-1")
    (other,) = create_keys(
        env, 1, company_id=globex["companyId"], days=30, name="Globex secret integration"
    )
    return owner, admin, member, other["id"]


def sign_in(page: Page, site: Site, person: Person) -> None:
    page.goto(f"{site.base_url}/admin/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def create_key(page: Page, site: Site, name: str, days: str = "30") -> str:
    """Creates a key through the form and returns the secret shown once."""
    page.goto(f"{site.base_url}/admin/api-keys/new")
    page.get_by_label("Name").fill(name)
    if days in {"7", "30", "60", "90"}:
        page.locator(f"label.choice:has(input[value='{days}'])").click()
    else:  # the field shows once "Custom" is chosen
        page.locator("label.choice:has(#expiry-custom)").click()
        page.get_by_label("Custom number of days").fill(days)
    page.get_by_role("button", name="Create API key").click()
    expect(page.get_by_role("heading", name="API key created")).to_be_visible()
    return page.locator("#new-api-key").inner_text().strip()


def key_id_of(key: str) -> str:
    return key.split(":")[1]


def call_api(site: Site, key: str, path: str = "/v4/user/me") -> tuple[int, dict[str, object]]:
    return call(site.base_url, path, key)


def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
