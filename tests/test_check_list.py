"""`velofarm check --list`: the farm as it will run, and it is what Buildbot is given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import FARM_TOML

from velofarm.buildmaster.config import load_master_config
from velofarm.buildmaster.farmplan import builder_plans, scheduler_plans
from velofarm.cli.farmlist import farm_listing
from velofarm.cli.localfarm import write_farm
from velofarm.spec.farm import load_spec

PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu"]


def velofarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "velofarm.cli.main", *args], capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_plan_is_what_buildbot_gets(tmp_path: Path) -> None:
    farm = write_farm(tmp_path / "farm", FARM_TOML, PLATFORMS, workers_per_platform=2)
    spec = load_spec(farm.spec_path)
    config = load_master_config(tmp_path / "master", farm.spec_path)
    max_builds = {w.workername: w.max_builds for w in config["workers"]}
    given = {b.name: [(w, max_builds[w]) for w in b.workernames] for b in config["builders"]}
    assert {b.name: list(b.workers) for b in builder_plans(spec)} == given
    given_schedulers = {s.name: (type(s).__name__, list(s.builderNames)) for s in config["schedulers"]}
    assert {s.name: (s.kind, list(s.triggers)) for s in scheduler_plans(spec)} == given_schedulers


def test_the_listing_shows_platform_builder_workers_and_schedulers(tmp_path: Path) -> None:
    farm = write_farm(tmp_path / "farm", FARM_TOML, PLATFORMS, workers_per_platform=2,
                      master={"poll_interval": 30, "webhook_port": 8811})
    text = farm_listing(load_spec(farm.spec_path))
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ")}
    for platform in PLATFORMS:
        assert rows[platform][1] == f"build-{platform}"
        assert f"local-{platform}-1 (max 1), local-{platform}-2 (max 1)" in " ".join(rows[platform])
        assert rows[f"platform-{platform}"][1:3] == ["Triggerable", f"build-{platform}"]
    assert rows["-"][1] == "release" and "release-coordinator (max 64)" in " ".join(rows["-"])
    assert rows["tags"][1:3] == ["TagScheduler", "release"]
    assert rows["release-dry-run"][1:3] == rows["release"][1:3] == ["ForceScheduler", "release"]
    assert "git poller every 30 s, signed webhook on port 8811" in text
    assert text.startswith("farm.toml: velostream: 2 platforms, 4 workers, publisher directory\n")


def test_check_list_through_the_command(tmp_path: Path) -> None:
    farm = write_farm(tmp_path / "farm", FARM_TOML, PLATFORMS)
    out = velofarm("check", "--list", "--spec", str(farm.spec_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout == farm_listing(load_spec(farm.spec_path))
    assert "Config file is good!" not in out.stdout  # no master, no checkconfig: it only prints


def test_check_list_refuses_a_bad_farm_first(tmp_path: Path) -> None:
    spec = tmp_path / "farm.toml"
    spec.write_text(FARM_TOML.read_text().replace("max_builds = 2", "max_builds = 0"))
    out = velofarm("check", "--list", "--spec", str(spec))
    assert out.returncode == 1 and out.stdout == ""
    assert "max_builds: must be a whole number from 1 to 64, got 0" in out.stderr and "Traceback" not in out.stderr
