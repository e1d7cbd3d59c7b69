"""Faults a release must survive, with real processes: here, a worker that stops answering while
Buildbot prepares it for a build (before the first step)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FARM_TOML, need_host_toolchains
from support.farmtools import wait_release_of

from velofarm.buildmaster.build import PING_TIMEOUT
from velofarm.cli.localfarm import LocalFarm, write_farm

pytestmark = pytest.mark.integration
PLATFORM = "linux-x86_64"


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    need_host_toolchains()
    farm = write_farm(tmp_path_factory.mktemp("faults") / "farm", FARM_TOML, [PLATFORM])
    farm.init_repo()
    farm.start_all()
    yield farm
    farm.stop_all()


def worker_pid(farm: LocalFarm, name: str) -> int:
    return int((farm.worker_dir(name) / "twistd.pid").read_text().strip())


def farm_state(farm: LocalFarm) -> str:
    """What the coordinator and the master did, for a failure message."""
    releases = [(b["number"], b["state_string"], b["complete"]) for b in farm.builds("release")]
    log = farm.master_dir / "twistd.log"
    tail = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else ["(no twistd.log)"]
    return f"release builds: {releases}\nmaster log (tail):\n" + "\n".join(tail)


def test_a_worker_that_stops_answering_before_the_first_step_does_not_hang_the_release(farm: LocalFarm) -> None:
    worker = next(iter(farm.workers))
    pid = worker_pid(farm, worker)
    os.kill(pid, signal.SIGSTOP)  # frozen: its TCP connection looks alive, it answers nothing
    try:
        farm.push_tag("v0.1.0")

        def started() -> dict[str, Any] | None:
            builds = farm.builds(f"build-{PLATFORM}")
            return builds[0] if builds else None

        # Any state will do ("created", "preparing worker", "pinging worker" or already over): the
        # frozen worker holds it in "pinging worker" for PING_TIMEOUT, a window a loaded machine's
        # polls may miss. What it ended as, and why, is checked below.
        try:
            build = farm.wait(started, 300, "the platform build to start on its frozen worker")
        except TimeoutError as timeout:
            raise AssertionError(f"{timeout}\n{farm_state(farm)}") from None

        def finished() -> dict[str, Any] | None:
            found = farm.api(f"builds/{build['buildid']}")["builds"][0]
            return found if found["complete"] else None

        ended = farm.wait(finished, PING_TIMEOUT * 8, "the build to give up on its frozen worker "
                                                      "(Buildbot alone waits for ever)")
    finally:
        os.kill(pid, signal.SIGCONT)  # it thaws, finds its connection dropped, and reconnects
    assert ended["results"] == 5, ended  # RETRY: the request goes back in the queue
    steps = farm.api(f"builds/{build['buildid']}/steps")["steps"]
    assert steps[0]["name"] == "worker_preparation" and "worker_ping" in steps[0]["state_string"]
    release = wait_release_of(farm, "v0.1.0")  # the retried build runs once the worker is back
    assert release["results"] == 0, release["state_string"]
    assert (farm.root / "releases" / "v0.1.0" / "release.json").exists()
