"""No platform build runs for ever: [release] build_timeout_minutes bounds its cargo build.

Buildbot ends a command only after 20 minutes without output; a build that keeps printing (a
build script in a loop, a test harness gone wrong) would hold the release open for ever. The cargo
build step carries `maxTime`; with a real farm and a one-second limit the cold build is stopped,
the platform fails naming the limit, and nothing is published.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
from support.farmtools import step_log, steps, wait_release_of
from test_spec import BASE, parse

from velofarm.buildmaster.factories import platform_factory
from velofarm.cli.localfarm import LocalFarm
from velofarm.errors import SpecError
from velofarm.spec.release_fields import DEFAULT_BUILD_TIMEOUT_MINUTES

FAILURE = 2


def with_release(tmp_path: Path, release: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE)
    data["release"] = release
    return parse(data, tmp_path)


def cargo_step(spec: Any, tmp_path: Path) -> Any:
    platform = next(iter(spec.platforms.values()))
    factory = platform_factory(spec, platform, tmp_path / "artifacts")
    return next(s for s in factory.steps if s.kwargs.get("name") == "cargo build")


def test_the_cargo_build_is_bounded_by_default(tmp_path: Path) -> None:
    spec = with_release(tmp_path, {})
    assert spec.release.build_timeout_minutes == DEFAULT_BUILD_TIMEOUT_MINUTES == 180
    assert cargo_step(spec, tmp_path).kwargs["maxTime"] == 180 * 60


def test_a_fraction_of_a_minute_is_at_least_a_second(tmp_path: Path) -> None:
    assert cargo_step(with_release(tmp_path, {"build_timeout_minutes": 2.5}), tmp_path).kwargs["maxTime"] == 150
    # 0.001 min rounds to 0 s, which Buildbot reads as "no limit": it stays one second.
    assert cargo_step(with_release(tmp_path, {"build_timeout_minutes": 0.001}), tmp_path).kwargs["maxTime"] == 1


@pytest.mark.parametrize("value", [0, -5, 10081, "90", False, None])
def test_a_bad_build_timeout_is_refused_naming_the_field(tmp_path: Path, value: object) -> None:
    with pytest.raises(SpecError, match=r"farm\.toml: release\.build_timeout_minutes: must be a number "
                                        r"of minutes above 0 and at most 10080"):
        with_release(tmp_path, {"build_timeout_minutes": value})


@pytest.mark.integration
def test_a_build_over_its_time_fails_the_release_naming_the_limit(make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64"], release={"build_timeout_minutes": 1 / 60})  # one second: a cold build takes longer
    farm.init_repo()
    farm.start_all()
    farm.push_tag("v0.1.0")

    release = wait_release_of(farm, "v0.1.0", timeout=600)
    assert release["results"] == FAILURE, release
    assert "linux-x86_64" in release["state_string"], release["state_string"]
    [build] = farm.builds("build-linux-x86_64")
    assert build["results"] == FAILURE, build["state_string"]
    cargo = next(s for s in steps(farm, build["buildid"]) if s["name"] == "cargo build")
    assert cargo["results"] == FAILURE, cargo
    text = step_log(farm, build["buildid"], "cargo build")
    assert "command timed out: 1 seconds elapsed" in text and "(maxTime 1 sec)" in text, text[-2000:]
    assert not (farm.root / "releases" / "v0.1.0").exists()
