"""No release hangs for a platform whose workers are gone: [release] platform_timeout_minutes.

Buildbot's Trigger waits for ever for a request no worker takes. With a real farm whose arm64
worker is stopped before the tag is pushed, the release fails after the (small) limit, naming the
platform and the worker; the platform whose worker is connected builds to the end however long it
takes, and nothing is published.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
from support.farmtools import step_log, steps, wait_release_of
from test_spec import BASE, parse

from velofarm.buildmaster.factories import release_factory
from velofarm.cli.localfarm import LocalFarm
from velofarm.errors import SpecError
from velofarm.spec.release_fields import DEFAULT_PLATFORM_TIMEOUT_MINUTES

CANCELLED, SUCCESS, FAILURE = 6, 0, 2
LIMIT_MINUTES = 0.1  # six seconds


# ------------------------------------------------------------------------------ the field

def with_release(tmp_path: Path, release: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE)
    data["release"] = release
    return parse(data, tmp_path)


def test_the_default_is_an_hour_and_fractions_are_allowed(tmp_path: Path) -> None:
    assert with_release(tmp_path, {}).release.platform_timeout_minutes == DEFAULT_PLATFORM_TIMEOUT_MINUTES == 60
    assert with_release(tmp_path, {"platform_timeout_minutes": 0.5}).release.platform_timeout_minutes == 0.5
    assert with_release(tmp_path, {"platform_timeout_minutes": 90}).release.platform_timeout_minutes == 90


@pytest.mark.parametrize("value", [0, -1, 10081, "30", True, [5]])
def test_a_bad_platform_timeout_is_refused_naming_the_field(tmp_path: Path, value: object) -> None:
    with pytest.raises(SpecError, match=r"farm\.toml: release\.platform_timeout_minutes: must be a number "
                                        r"of minutes above 0 and at most 10080"):
        with_release(tmp_path, {"platform_timeout_minutes": value})


def test_the_release_trigger_gets_the_limit(tmp_path: Path) -> None:
    spec = with_release(tmp_path, {"platform_timeout_minutes": 7})
    factory = release_factory(spec, tmp_path / "artifacts", tmp_path / "staging")
    trigger = next(s for s in factory.steps if s.kwargs.get("name") == "build platforms")
    assert trigger.kwargs["platform_timeout_minutes"] == 7


# ------------------------------------------------------------------------------ a real farm

@pytest.mark.integration
def test_a_platform_whose_worker_never_returns_fails_the_release_in_bounded_time(
        make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64", "linux-arm64"], release={"platform_timeout_minutes": LIMIT_MINUTES})
    farm.init_repo()
    farm.start_all()
    gone = "local-linux-arm64-1"
    farm.stop_worker(gone)
    farm.wait(lambda: gone not in farm.connected_workers(), 60, f"{gone} to disconnect")
    farm.push_tag("v0.1.0")

    release = wait_release_of(farm, "v0.1.0", timeout=900)  # Buildbot alone would wait for ever
    assert release["results"] == FAILURE, release
    assert "linux-arm64" in release["state_string"] and gone in release["state_string"], release["state_string"]
    trigger = next(s for s in steps(farm, release["buildid"]) if s["name"] == "build platforms")
    assert trigger["results"] == FAILURE
    assert f"no worker connected for {LIMIT_MINUTES:g} min: linux-arm64 (waited for {gone})" in \
        trigger["state_string"], trigger["state_string"]
    log = step_log(farm, release["buildid"], "build platforms")
    assert f"platform linux-arm64: no worker connected for {LIMIT_MINUTES:g} minutes (waited for {gone})" in log

    # The arm64 request was cancelled without a build; the x86_64 build, on a connected worker,
    # was not cut short by the limit and ran to the end.
    [builder] = farm.api("builders/build-linux-arm64")["builders"]
    [arm] = farm.api(f"builders/{builder['builderid']}/buildrequests")["buildrequests"]
    assert arm["complete"] and arm["results"] == CANCELLED and farm.builds("build-linux-arm64") == []
    [x86] = farm.builds("build-linux-x86_64")
    assert x86["complete"] and x86["results"] == SUCCESS, x86["state_string"]

    # Nothing was assembled or published.
    assert not (farm.root / "releases" / "v0.1.0").exists()
    ran = {s["name"]: s["results"] for s in steps(farm, release["buildid"])}
    assert ran.get("verify and assemble") is None and ran.get("publish") is None, ran
