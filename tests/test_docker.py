"""Linux builds in fresh Docker containers: real engine, real builder image, real master and cargo."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import FARM_TOML, need_docker
from support.containers import container_prefix, containers_of, docker, volumes_of
from support.farmtools import step_log, steps, wait_release_of

from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.images.engine import image_id

pytestmark = [pytest.mark.integration, pytest.mark.docker]
EXCEPTION, RETRY = 4, 5  # buildbot.process.results; RETRY means "queue it again"
CONTAINER_PLATFORMS = ["linux-x86_64", "linux-arm64", "windows-x86_64-gnu"]


def platform_build(farm: LocalFarm, platform: str) -> dict[str, Any]:
    return farm.api(f"builders/build-{platform}/builds?order=-number&limit=1&property=*")["builds"][0]


def watch_environments(farm: LocalFarm, seen: dict[str, list[str]], stop: threading.Event) -> None:
    """Record each build container's environment as `docker inspect` shows it."""
    prefixes = tuple(container_prefix(w) for w in farm.docker_workers)
    while not stop.is_set():
        names = [n for n in docker("ps", "-a", "--format", "{{.Names}}").split() if n.startswith(prefixes)]
        for name in names:
            if name not in seen:
                out = docker("inspect", "--format", "{{json .Config.Env}}", name).strip()
                if out.startswith("["):
                    seen[name] = json.loads(out)
        stop.wait(0.2)


def test_a_tag_is_released_from_fresh_containers(builder_image: str, docker_farm: Callable[..., LocalFarm]) -> None:
    farm = docker_farm(builder_image, CONTAINER_PLATFORMS)
    seen: dict[str, list[str]] = {}
    stop = threading.Event()
    watcher = threading.Thread(target=watch_environments, args=(farm, seen, stop), daemon=True)
    watcher.start()
    try:
        farm.push_tag("v0.1.0")
        release = wait_release_of(farm, "v0.1.0", timeout=900)
    finally:
        stop.set()
        watcher.join(10)
    assert release["results"] == 0, release["state_string"]
    digest = image_id(builder_image)
    meta = json.loads((farm.root / "releases" / "v0.1.0" / "release.json").read_text())
    assert {p["name"] for p in meta["platforms"]} == set(CONTAINER_PLATFORMS)
    for entry in meta["platforms"]:
        assert entry["builder_image_digest"] == digest and entry["builder_image"] == builder_image
        build = platform_build(farm, entry["name"])
        assert build["properties"]["builder_image_digest"][0] == digest
        assert build["results"] == 0
    # One container per build, each seen while it ran, none with a password in its environment.
    assert len(seen) == len(CONTAINER_PLATFORMS), seen
    for env in seen.values():
        names = {item.split("=", 1)[0] for item in env}
        assert "WORKERPASS" not in names and {"BUILDMASTER", "WORKERNAME"} <= names, env
    assert containers_of(farm) == []  # each removed when its build ended
    assert any(v.endswith("-target") for v in volumes_of(farm)), "the target cache lives in a named volume"


def test_a_missing_image_fails_the_platform_once_naming_worker_image_and_reason(
        docker_farm: Callable[..., LocalFarm]) -> None:
    need_docker()
    farm = docker_farm("velofarm-builder:no-such-image", ["linux-x86_64"])
    farm.push_tag("v0.1.0")
    release = wait_release_of(farm, "v0.1.0", timeout=300)
    assert release["results"] != 0
    assert "linux-x86_64" in release["state_string"], release["state_string"]
    builds = farm.builds("build-linux-x86_64")
    assert len(builds) == 1 and builds[0]["results"] == EXCEPTION, builds  # ended once, not RETRY and re-queued
    text = "\n".join(step_log(farm, builds[0]["buildid"], s["name"]) for s in steps(farm, builds[0]["buildid"]))
    assert "docker-linux-x86_64-1" in text and "velofarm-builder:no-such-image" in text, text
    assert "not found" in text, text


def test_an_unreachable_engine_fails_the_platform_naming_the_engine(docker_farm: Callable[..., LocalFarm],
                                                                    tmp_path: Path) -> None:
    need_docker()
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64"], docker_image="velofarm-builder:any")
    text = farm.spec_path.read_text().replace("unix:///var/run/docker.sock", f"unix://{tmp_path}/no-engine.sock")
    farm.spec_path.write_text(text)
    farm.init_repo()
    farm.start_all()
    try:
        farm.push_tag("v0.1.0")
        release = wait_release_of(farm, "v0.1.0", timeout=300)
        assert release["results"] != 0 and "linux-x86_64" in release["state_string"]
        builds = farm.builds("build-linux-x86_64")
        assert len(builds) == 1 and builds[0]["results"] == EXCEPTION, builds
        text = "\n".join(step_log(farm, builds[0]["buildid"], s["name"]) for s in steps(farm, builds[0]["buildid"]))
        assert "no-engine.sock" in text and "could not start" in text, text
    finally:
        farm.stop_all()


def running_step(farm: LocalFarm, builder: str) -> tuple[dict[str, Any], str] | None:
    builds = [b for b in farm.builds(builder) if not b["complete"]]
    if not builds:
        return None
    running = [s["name"] for s in steps(farm, builds[0]["buildid"]) if s["started_at"] and not s["complete"]]
    return (builds[0], running[0]) if running else None


def test_a_container_killed_during_cargo_build_is_retried_in_a_new_one(
        builder_image: str, docker_farm: Callable[..., LocalFarm]) -> None:
    farm = docker_farm(builder_image, ["linux-x86_64"])
    farm.push_tag("v0.1.0")
    farm.wait(lambda: (running_step(farm, "build-linux-x86_64") or ({}, ""))[1] == "cargo build", 600,
              "cargo build to start in the container", every=0.1)
    killed = containers_of(farm)
    assert len(killed) == 1, killed
    docker("kill", killed[0])
    release = wait_release_of(farm, "v0.1.0", timeout=900)
    assert release["results"] == 0, release["state_string"]
    builds = farm.builds("build-linux-x86_64")
    assert [b["results"] for b in builds] == [RETRY, 0], builds
    folder = farm.root / "master" / "artifacts" / "v0.1.0" / "linux-x86_64"
    archive = "velostream-v0.1.0-x86_64-unknown-linux-gnu.tar.gz"
    # One set of artifacts: the retried build stored once (builds/<id>/, linked as the newest).
    assert sorted(p.name for p in folder.iterdir()) == sorted([archive, f"{archive}.sha256", "build.json", "builds"])
    [stored] = list((folder / "builds").iterdir())
    assert stored.name == str(builds[-1]["buildid"])
    assert sorted(p.name for p in stored.iterdir()) == sorted([archive, f"{archive}.sha256", "build.json",
                                                               "builder-image.json"])
    assert sorted(p.name for p in (farm.root / "master" / "artifacts" / "v0.1.0").iterdir()) == ["linux-x86_64"]
    assert len(farm.builds("release")) == 1
    assert killed[0] not in containers_of(farm)


def test_two_demo_runs_in_containers_give_the_same_sha256sums(builder_image: str, tmp_path: Path) -> None:
    """`make demo` with an engine: linux-x86_64, linux-arm64 and windows-x86_64-gnu from containers,
    the second run with warm cache volumes, every archive byte for byte the same (SHA256SUMS)."""
    sums = []
    caches = [f"velofarm-docker-{p}-1-{p}-{kind}" for p in CONTAINER_PLATFORMS for kind in ("registry", "target")]
    try:
        for run in ("first", "second"):
            out = subprocess.run([sys.executable, "-m", "velofarm.cli.main", "demo", "--once", "--dir",
                                  str(tmp_path / run)], capture_output=True, text=True, timeout=1800, check=False)
            assert out.returncode == 0, out.stdout + out.stderr
            assert f"workers   Docker containers of {builder_image}" in out.stdout
            for platform in CONTAINER_PLATFORMS:
                assert f"  {platform:<20} " in out.stdout and "in image" in out.stdout
            lines = (tmp_path / run / "releases" / "v0.1.0" / "SHA256SUMS").read_text().splitlines()
            # The archives' lines; the provenance statement records each run's own build times.
            sums.append("\n".join(line for line in lines if line.endswith((".tar.gz", ".zip"))))
    finally:
        docker("volume", "rm", "--force", *caches)  # the demo keeps them for warm runs; a test does not
    assert sums[0] == sums[1] and len(sums[0].splitlines()) == len(CONTAINER_PLATFORMS), sums
    leftovers = [n for n in docker("ps", "-a", "--format", "{{.Names}}").split() if n.startswith("buildbot-docker-")]
    assert leftovers == []
