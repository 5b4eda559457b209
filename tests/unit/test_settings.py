"""Settings: declared once (src/keyport/config.py), read from KEYPORT_* variables, checked
however they are built, and README.md's tables true to the declaration."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from keyport.config import MAX_INT_SETTING, Settings, SettingsError, env_name

README = Path(__file__).resolve().parents[2] / "README.md"


def documented_defaults() -> dict[str, str]:
    """Each `KEYPORT_*` row of README.md's tables: variable → its default cell (one per name
    when a row names two, `A` / `B` with defaults `a` / `b`)."""
    rows: dict[str, str] = {}
    for line in README.read_text().splitlines():
        if not line.startswith("| `KEYPORT_"):
            continue
        names_cell, default_cell = (cell.strip() for cell in line.split("|")[1:3])
        names = [name.strip().strip("`") for name in names_cell.split(" / ")]
        defaults = default_cell.split(" / ") if len(names) > 1 else [default_cell]
        assert len(defaults) == len(names), line
        rows.update(zip(names, (default.strip() for default in defaults), strict=True))
    return rows


def written(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_readme_tables_name_every_setting_and_no_other() -> None:
    declared = {env_name(field.name) for field in dataclasses.fields(Settings)}
    assert set(documented_defaults()) == declared


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda field: field.name)
def test_readme_gives_each_settings_declared_default(field: dataclasses.Field[object]) -> None:
    cell = documented_defaults()[env_name(field.name)]
    default = getattr(Settings(), field.name)
    if default is None or default == ():
        assert not cell.startswith("`"), f"{cell!r}: unset by default, said in words"
    else:
        first_value = re.search(r"`([^`]*)`", cell)
        assert first_value is not None and first_value.group(1) == written(default), cell


def test_unset_and_empty_variables_leave_the_defaults() -> None:
    everything_empty = {env_name(field.name): "" for field in dataclasses.fields(Settings)}
    assert Settings.from_env({}) == Settings.from_env(everything_empty) == Settings()


def test_whole_numbers_are_not_read_as_numbers_cut_down() -> None:
    assert Settings.from_env({"KEYPORT_PASSWORD_TIME_COST": "2"}).password_time_cost == 2
    for name in ("KEYPORT_PASSWORD_TIME_COST", "KEYPORT_SIGN_IN_MAX_FAILURES"):
        with pytest.raises(SettingsError) as refused:
            Settings.from_env({name: "1.5"})
        assert str(refused.value) == f"{name} must be a whole number up to {MAX_INT_SETTING}"
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"KEYPORT_RATE_LIMIT": str(MAX_INT_SETTING + 1)})
    assert (
        str(refused.value) == f"KEYPORT_RATE_LIMIT must be a whole number up to {MAX_INT_SETTING}"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEYPORT_CACHE_TTL": "soon"}, "KEYPORT_CACHE_TTL must be a number, not 'soon'"),
        ({"KEYPORT_CACHE_TTL": "nan"}, "KEYPORT_CACHE_TTL must be a number, not 'nan'"),
        ({"KEYPORT_RATE_LIMIT": "many"}, "KEYPORT_RATE_LIMIT must be a number, not 'many'"),
        ({"KEYPORT_CACHE_TTL": "0.01"}, "KEYPORT_CACHE_TTL must be at least 0.1"),
        ({"KEYPORT_AUTH_FAILURE_LIMIT": "-1"}, "KEYPORT_AUTH_FAILURE_LIMIT must be at least 0"),
        ({"KEYPORT_ACCESS_LOG": "Maybe"}, "KEYPORT_ACCESS_LOG must be true or false, not 'maybe'"),
        (
            {"KEYPORT_PUBLIC_URL": "ftp://keys.example.com"},
            "KEYPORT_PUBLIC_URL must be an http(s) URL, not 'ftp://keys.example.com'",
        ),
        (
            {"KEYPORT_DATABASE_URL": "mysql://db/keys"},
            "KEYPORT_DATABASE_URL: unsupported database URL 'mysql://db/keys': "
            "use sqlite:///path or postgresql://host/db",
        ),
        (
            {"KEYPORT_TRUSTED_PROXIES": "10.0.0.1,gateway"},
            "KEYPORT_TRUSTED_PROXIES: not an IP address or network: 'gateway'",
        ),
    ],
)
def test_a_refused_value_is_named_with_what_is_wrong(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert str(refused.value) == message


def test_the_burst_follows_the_rate_unless_it_is_given() -> None:
    assert Settings.from_env({"KEYPORT_RATE_LIMIT": "30"}).rate_limit_burst == 60
    assert Settings.from_env({"KEYPORT_RATE_LIMIT": "0"}).rate_limit_burst == 200
    both = {"KEYPORT_RATE_LIMIT": "30", "KEYPORT_RATE_LIMIT_BURST": "5"}
    assert Settings.from_env(both).rate_limit_burst == 5
    assert Settings(rate_limit=7).rate_limit_burst == 14


def test_expiry_checks_run_at_least_once_a_minute() -> None:
    assert Settings.from_env({"KEYPORT_EXPIRY_CHECK_INTERVAL": "600"}).expiry_check_interval == 60


def test_settings_built_or_changed_in_code_are_checked_too() -> None:
    with pytest.raises(ValidationError):
        Settings(rate_limit_burst=0)
    with pytest.raises(ValidationError):
        Settings(secret_key="too short")
    with pytest.raises(ValidationError, match="more than twice"):
        dataclasses.replace(Settings(), webhook_poll_interval=20.0)
    assert Settings(database_url="sqlite:///keys.db").database_url == "sqlite+aiosqlite:///keys.db"
