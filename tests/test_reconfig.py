"""`velofarm reconfig`: workers and platforms come and go without restarting the master or
interrupting a running build."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import FARM_TOML

from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.onboard import workertac
from velofarm.spec import tomlwrite

SUCCESS, FAILURE, RETRY, EXCEPTION = 0, 2, 4, 5

# A stand-in for cargo that builds nothing: it holds the "cargo build" step open until the test
# lets it finish, so the reconfig surely happens while a build runs. No compiler time spent.
SLOW_CARGO = """#!/bin/sh
touch "{started}"
i=0
while [ ! -e "{release}" ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
echo "stand-in cargo: $*"
"""


def velofarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "velofarm.cli.main", *args], capture_output=True, text=True,
                          timeout=400, check=False)


def edit_spec(farm: LocalFarm, change) -> None:  # type: ignore[no-untyped-def]
    data = tomllib.loads(farm.spec_path.read_text())
    change(data)
    farm.spec_path.write_text(tomlwrite.dumps(data))


def master_pid(farm: LocalFarm) -> str:
    return (farm.master_dir / "twistd.pid").read_text().strip()


def active_builders(farm: LocalFarm) -> set[str]:
    # The API lists every builder the database ever saw; a configured one has a master.
    return {b["name"] for b in farm.api("builders")["builders"] if b["masterids"]}


def step_of(farm: LocalFarm, buildid: int, name: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in farm.api(f"builds/{buildid}/steps")["steps"] if s["name"] == name)


@pytest.mark.integration
def test_reconfig_adds_and_removes_workers_and_platforms_while_a_build_runs(make_farm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(["linux-x86_64"], name="reconfig", master={"worker_registry": "onboarding/registry.toml"})
    started, release = tmp_path / "cargo-started", tmp_path / "cargo-may-finish"
    cargo = tmp_path / "slow-cargo"
    cargo.write_text(SLOW_CARGO.format(started=started, release=release))
    cargo.chmod(0o755)
    edit_spec(farm, lambda d: d["platforms"]["linux-x86_64"].update(cargo=str(cargo)))
    spec = str(farm.spec_path)
    farm.init_repo()
    farm.start_all()
    pid = master_pid(farm)
    extra = tmp_path / "extra-1"
    try:
        farm.push_tag("v0.1.0")
        farm.wait(started.exists, 180, "the platform build to reach `cargo build`")
        build = farm.builds("build-linux-x86_64")[-1]
        assert not build["complete"]
        listed = velofarm("worker", "list", "--spec", spec).stdout
        assert re.search(r"local-linux-x86_64-1\s+linux-x86_64\s+yes\s+now\s+build-linux-x86_64 #1\s", listed), listed

        # A new platform and a new worker for it (and for linux-x86_64), while the build runs.
        edit_spec(farm, lambda d: d["platforms"].update({"windows-x86_64-gnu": {}}))
        added = velofarm("worker", "add", "extra-1", "--platform", "linux-x86_64", "--platform",
                         "windows-x86_64-gnu", "--spec", spec)
        assert added.returncode == 0, added.stderr
        out = velofarm("reconfig", "--spec", spec)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "Reconfiguration appears to have completed successfully" in out.stdout
        assert "build-windows-x86_64-gnu" in active_builders(farm)
        password = farm.secrets.get("worker-extra-1") or ""
        workertac.create_worker_dir(extra, f"127.0.0.1:{farm.pb_port}", "extra-1", password)
        subprocess.run([*workertac.WORKER_CMD, "start", str(extra)], stdout=subprocess.DEVNULL, timeout=120, check=False)
        farm.wait(lambda: "extra-1" in farm.connected_workers(), 60, "extra-1 to be accepted")

        # The running build went on, on its worker, to the end of its `cargo build` step.
        release.touch()
        done = farm.wait(lambda: farm.api(f"builds/{build['buildid']}")["builds"][0]["complete"] and
                         farm.api(f"builds/{build['buildid']}")["builds"][0], 120, "the build to finish")
        assert step_of(farm, build["buildid"], "cargo build")["results"] == SUCCESS
        assert done["results"] not in (RETRY, EXCEPTION), done["state_string"]
        assert done["workerid"] == build["workerid"]

        # Remove the platform and the worker again: the builder goes, the worker is disconnected.
        edit_spec(farm, lambda d: d["platforms"].pop("windows-x86_64-gnu"))
        removed = velofarm("worker", "remove", "extra-1", "--spec", spec)
        assert removed.returncode == 0, removed.stderr
        out = velofarm("reconfig", "--spec", spec)
        assert out.returncode == 0, out.stdout + out.stderr
        farm.wait(lambda: "extra-1" not in farm.connected_workers(), 60, "extra-1 to be disconnected")
        assert "build-windows-x86_64-gnu" not in active_builders(farm)
        assert master_pid(farm) == pid
    finally:
        release.touch()
        if (extra / "twistd.pid").exists():
            subprocess.run([*workertac.WORKER_CMD, "stop", str(extra)], stdout=subprocess.DEVNULL, timeout=60, check=False)


def test_reconfig_refuses_an_invalid_spec_before_signalling_the_master(tmp_path: Path) -> None:
    # No master runs here: every refusal comes before `buildbot reconfig` is sent.
    farm = write_farm(tmp_path / "refuse", FARM_TOML, ["linux-x86_64"])
    registry = farm.root / "workers" / "registry.toml"
    registry.parent.mkdir()
    registry.write_text('[workers.w]\nplatforms = ["linux-x86"]\n')
    out = velofarm("reconfig", "--spec", str(farm.spec_path))
    assert out.returncode == 1
    assert "workers/registry.toml: workers.w.platforms: unknown platform 'linux-x86'" in out.stderr
    registry.unlink()
    password = farm.secrets.get("worker-local-linux-x86_64-1") or ""
    farm.secrets.remove("worker-local-linux-x86_64-1")
    out = velofarm("reconfig", "--spec", str(farm.spec_path))
    assert out.returncode == 1 and "velofarm worker rotate local-linux-x86_64-1" in out.stderr
    farm.secrets.put("worker-local-linux-x86_64-1", password)
    farm.secrets.directory.chmod(0o755)
    out = velofarm("reconfig", "--spec", str(farm.spec_path))
    assert out.returncode == 1 and "secrets folder is readable by others" in out.stderr
    farm.secrets.directory.chmod(0o700)
    out = velofarm("reconfig", "--spec", str(farm.spec_path))
    assert out.returncode == 1 and "no running master" in out.stderr
