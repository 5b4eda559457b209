"""The import-linter layers contract (pyproject.toml) names every top-level package and module
of keyport: one added without a layer would be checked by no arrow."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import keyport

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def layered() -> set[str]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    return {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}


def test_every_top_level_package_and_module_is_in_a_layer() -> None:
    top_level = {f"keyport.{m.name}" for m in pkgutil.iter_modules(keyport.__path__)}
    assert top_level - layered() == set()
    assert layered() - top_level == set()  # and names nothing that is gone
