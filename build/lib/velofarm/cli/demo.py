"""`velofarm demo`: the whole release of the example on this machine, watched live in the terminal."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.errors import VelofarmError
from velofarm.release.verify import verify_release
from velofarm.spec.farm import Spec, load_spec
from velofarm.worker_tools.preflight import check_toolchain

MARKER = ".velofarm-demo"
TAG = "v0.1.0"


def buildable_platforms(spec: Spec) -> tuple[list[str], dict[str, list[str]]]:
    """Platforms whose toolchain this host has, and for the others what is missing and how to fix it."""
    ok, skipped = [], {}
    for name, platform in spec.platforms.items():
        missing = [c for c in check_toolchain(platform.to_json(), spec.project.needs_protoc) if not c.ok]
        if missing:
            skipped[name] = [f"{c.name}: {c.detail} -> {c.fix}" for c in missing]
        else:
            ok.append(name)
    return ok, skipped


def prepare_dir(directory: Path) -> None:
    """A fresh scratch folder; an old demo there is stopped and removed, anything else is refused."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise VelofarmError(f"{directory}: exists and is not a velofarm demo folder; pick another --dir")
        old = LocalFarm(directory, directory / "farm.toml", 0, 0,
                        {p.name: [] for p in (directory / "workers").glob("*")} if (directory / "workers").exists() else {})
        old.stop_all()
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("velofarm demo scratch folder; safe to delete\n")


def container_image(use_docker: bool) -> str | None:
    """The builder image's tag when a Docker engine is here (built first, reused later), else None."""
    from velofarm.images.builder import build_builder
    from velofarm.images.engine import engine_problem
    if not use_docker:
        print("workers   host worker processes (--no-docker)")
        return None
    problem = engine_problem()
    if problem:
        print(f"workers   host worker processes: no Docker engine reachable ({problem})")
        return None
    image = build_builder(lambda line: print(line, flush=True))
    print(f"workers   Docker containers of {image.tag} ({image.image_id[:19]}), a fresh one per build")
    return image.tag


def container_platforms(spec: Spec) -> tuple[list[str], dict[str, list[str]]]:
    """The platforms the builder image has toolchains for; the others are skipped, saying why."""
    from velofarm.images.builder import IMAGE_PLATFORMS
    ok = [name for name in spec.platforms if name in IMAGE_PLATFORMS]
    return ok, {name: ["the builder image has no toolchain for it (images/builder/Dockerfile)"]
                for name in spec.platforms if name not in IMAGE_PLATFORMS}


def run_demo(directory: Path, once: bool, spec_template: Path, use_docker: bool = True) -> int:
    directory = directory.resolve()
    spec = load_spec(spec_template)
    image = container_image(use_docker)
    platforms, skipped = container_platforms(spec) if image else buildable_platforms(spec)
    for name, reasons in skipped.items():
        print(f"skipped   {name}: this host cannot build it:")
        for reason in reasons:
            print(f"            {reason}")
    if not platforms:
        raise VelofarmError("this host can build none of the platforms; run the fixes above and try again")
    prepare_dir(directory)
    farm = write_farm(directory, spec_template, platforms, docker_image=image)
    farm.init_repo()
    print(f"building  {', '.join(platforms)} in {directory}")
    try:
        farm.start_all()
        print(f"web UI    {farm.url}")
        started = time.monotonic()
        farm.push_tag(TAG)
        print(f"pushed    {TAG} to {farm.remote}")
        release = watch(farm, platforms, started)
        status = report(farm, platforms, release, time.monotonic() - started)
        if once:
            return status
        print(f"\nThe master keeps running: {farm.url} (Ctrl-C stops it)")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 130
    finally:
        farm.stop_all()


def _latest(farm: LocalFarm, builder: str) -> dict[str, Any] | None:
    builds = farm.api(f"builders/{builder}/builds?order=-number&limit=1")["builds"]
    return builds[0] if builds else None


def watch(farm: LocalFarm, platforms: list[str], started: float) -> dict[str, Any]:
    """Print each platform's current step as it changes, until the release build ends."""
    shown: dict[str, str] = {}
    while True:
        for name in platforms:
            build = _latest(farm, f"build-{name}")
            if build is None:
                continue
            state = build["state_string"]
            if not build["complete"]:
                running = [st["name"] for st in farm.api(f"builds/{build['buildid']}/steps")["steps"]
                           if st["started_at"] and not st["complete"]]
                state = running[0] if running else state
            if shown.get(name) != state:
                shown[name] = state
                print(f"{time.monotonic() - started:6.1f}s  {name:<20} {state}", flush=True)
        release = _latest(farm, "release")
        if release and release["complete"]:
            return release
        time.sleep(0.3)


def report(farm: LocalFarm, platforms: list[str], release: dict[str, Any], elapsed: float) -> int:
    folder = farm.root / "releases" / TAG
    if release["results"] != 0 or not folder.exists():
        print(f"\nFAILED    {TAG}: {release['state_string']} (see {farm.url}#/builders)", file=sys.stderr)
        return 1
    problems = verify_release(folder)
    meta = json.loads((folder / "release.json").read_text())
    print(f"\nreleased  {TAG} in {elapsed:.1f} s: {folder}")
    for entry in meta["platforms"]:
        build = _latest(farm, f"build-{entry['name']}") or {}
        took = (build.get("complete_at") or 0) - (build.get("started_at") or 0)
        print(f"  {entry['name']:<20} {entry['archive']:<52} {entry['size'] / 1048576:6.2f} MiB  "
              f"{entry['sha256'][:16]}  built in {took:.0f} s"
              + (f" in image {entry['builder_image_digest'][7:19]}" if "builder_image_digest" in entry else ""))
    for problem in problems:
        print(f"  FAIL {problem}", file=sys.stderr)
    print("verified  every checksum, SHA256SUMS and release.json" if not problems else "NOT verified")
    return 1 if problems else 0
