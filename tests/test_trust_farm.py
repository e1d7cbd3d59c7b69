"""A real master refuses to release what it cannot sign, before any platform builds."""

from __future__ import annotations

from typing import Any, Callable

import pytest
from support.farmtools import step_log, steps, wait_release_of

from velofarm.cli.localfarm import LocalFarm

pytestmark = pytest.mark.integration


def test_a_missing_signing_key_fails_the_release_before_any_build(make_farm: Callable[..., LocalFarm]) -> None:
    farm = make_farm(["linux-x86_64"])
    farm.secrets.path("signing-provenance.key").unlink()
    farm.init_repo()
    farm.start_all()
    farm.push_tag("v0.1.0")
    build: dict[str, Any] = wait_release_of(farm, "v0.1.0", timeout=120)
    assert build["results"] == 2, build["state_string"]
    names = [s["name"] for s in steps(farm, build["buildid"])]
    failed = [s["name"] for s in steps(farm, build["buildid"]) if s["results"] == 2]
    assert failed == ["check signing keys"], names
    log = step_log(farm, build["buildid"], "check signing keys")
    assert "signing-provenance.key: signing key is missing; run: velofarm keys init" in log
    assert farm.builds("build-linux-x86_64") == []  # nothing was built
    assert not (farm.root / "releases" / "v0.1.0").exists()
