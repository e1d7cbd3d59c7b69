"""Tags that arrive through the git poller (self-hosted repositories without hooks)."""

from __future__ import annotations

import pytest
from support.farmtools import quiet_for, release_builds, wait_release_of

pytestmark = pytest.mark.integration


def test_poller_releases_a_tag_on_an_already_seen_commit(make_farm) -> None:
    farm = make_farm(platforms=["linux-x86_64"], master={"poll_interval": 1})
    farm.init_repo()
    (farm.remote / "hooks" / "post-receive").unlink()  # only the poller may see this tag
    farm.start_all()
    assert quiet_for(farm, 3) == 0  # the first polls record the repository; nothing is released
    farm.push_tag("v0.1.0")  # on the commit the poller has already seen
    build = wait_release_of(farm, "v0.1.0", timeout=300)
    assert build["results"] == 0, build["state_string"]
    assert (farm.root / "releases" / "v0.1.0" / "SHA256SUMS").exists()
    farm.push_tag("not-a-release")
    assert quiet_for(farm, 4) == len(release_builds(farm)) == 1
