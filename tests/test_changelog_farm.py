"""A real farm refuses a release whose CHANGELOG.md lacks the version, before any platform is built."""

from __future__ import annotations

import pytest
from support.farmtools import step_log, steps, wait_release_of

pytestmark = pytest.mark.integration


def test_missing_changelog_section_stops_the_release_before_any_build(make_farm) -> None:
    farm = make_farm(release={"notes": "changelog"})
    farm.init_repo()  # the example has no CHANGELOG.md
    farm.start_all()
    farm.push_tag("v0.1.0")
    build = wait_release_of(farm, "v0.1.0")
    assert build["results"] == 2, build["state_string"]  # FAILURE
    done = {s["name"]: s["results"] for s in steps(farm, build["buildid"]) if s["complete"]}
    assert done["resolve tag"] == 0 and done["changelog"] == 2 and "build platforms" not in done
    log = step_log(farm, build["buildid"], "changelog")
    assert "error: CHANGELOG.md (at " in log and "does not exist" in log and 'notes = "git"' in log
    for platform in ("linux-x86_64", "windows-x86_64-gnu"):
        assert farm.api(f"builders/build-{platform}/builds")["builds"] == []
    assert not (farm.root / "releases" / "v0.1.0").exists()
