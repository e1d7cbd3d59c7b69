"""Finding 3, as a unit check that catches a new step at once: every step of every factory that
can log its command's environment is told not to (the real-release scan is in test_harden_release)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FARM_TOML

from velofarm.buildmaster.factories import platform_factory, release_factory
from velofarm.spec.farm import load_spec


def factories(tmp_path: Path) -> list[tuple[str, object]]:
    spec = load_spec(FARM_TOML)
    result = [(name, platform_factory(spec, p, tmp_path)) for name, p in spec.platforms.items()]
    return [*result, ("release", release_factory(spec, tmp_path / "artifacts", tmp_path / "staging"))]


def test_no_step_logs_its_environment(tmp_path: Path) -> None:
    checked = 0
    for name, factory in factories(tmp_path):
        for step in factory.steps:  # type: ignore[attr-defined]
            built = step.buildStep()
            if hasattr(built, "logEnviron"):
                assert built.logEnviron is False, f"{name}: step {built.name!r} logs its environment"
                checked += 1
    if checked == 0:
        pytest.fail("no step with logEnviron was found: the check checks nothing")
