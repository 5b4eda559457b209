"""bench/run.py names only scripts and configurations that exist, and bench/README.md lists
every scenario it has (the suite itself runs only by hand: `bench/run.py --smoke all`)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from bench import run

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("scenario", run.SCENARIOS, ids=lambda scenario: scenario.name)
def test_each_scenario_runs_a_script_of_the_suite(scenario: run.Scenario) -> None:
    if scenario.script[0] == "-m":
        assert (ROOT / (scenario.script[1].replace(".", "/") + ".py")).is_file()
    else:
        assert (ROOT / scenario.script[0]).is_file()


def test_the_hot_path_scenarios_name_configurations_it_knows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # the scripts import their helpers so
    monkeypatch.setattr(sys, "argv", ["hotpath_compare.py"])
    hotpath_compare = importlib.import_module("hotpath_compare")

    for scenario in run.SCENARIOS:
        if scenario.script[0] == "bench/hotpath_compare.py":
            configs = scenario.script[scenario.script.index("--configs") + 1].split(",")
            assert set(configs) <= set(hotpath_compare.CONFIGS), scenario.name


def test_the_readme_lists_every_scenario() -> None:
    readme = (ROOT / "bench" / "README.md").read_text()
    section = readme.split("\n## Scenarios\n", 1)[1].split("\n## ", 1)[0]
    listed = {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}
    assert listed == {scenario.name for scenario in run.SCENARIOS}
    assert len(readme.splitlines()) <= 250
