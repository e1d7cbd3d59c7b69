"""From a build request to the first step in a fresh Docker container, against `docker run` by hand.

A farm with one Docker latent worker for linux-x86_64 (velofarm's ContainerWorker, the builder
image `velofarm image build` makes for the current inputs). Each repetition forces the real
platform build; velofarm's figure runs from the force call (the request as a user makes it) to
the build's first step in the container created for it (after Buildbot's own worker_preparation;
EventRecorder's times); the build is then stopped (what
follows is measured elsewhere) and the container removed before the next. Baseline, the engine's
own floor, run alternately: `docker run --rm` of the same image with the same network, init and
volumes, running `true`. `docker events` gives the container's create and start times, the
master's events the worker's connection, for the breakdown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.events import read_events
from bench.farms import new_farm, start_farm
from bench.procs import Procs, api, force, wait_for
from bench.stats import repeat
from velofarm.cli.localfarm import LocalFarm, git
from velofarm.images import base, builder
from velofarm.images.engine import engine_problem, image_id

REPS = 4
TAG = "v0.1.0"
PLATFORM = "linux-x86_64"
HOME = "/home/builder"


def current_image() -> tuple[str, str]:
    """(builder image tag for the current inputs, '') or ('', why the section cannot run)."""
    problem = engine_problem()
    if problem:
        return "", f"no Docker engine answers ({problem})"
    chosen = builder.DEFAULT_BASE if image_id(builder.DEFAULT_BASE) else base.planned_base()[0]
    if not image_id(chosen):
        return "", f"no base image ({builder.DEFAULT_BASE} or {chosen}); run `velofarm image build` first"
    with tempfile.TemporaryDirectory(prefix="velofarm-bench-image-") as scratch:
        context = builder.copy_context(builder.IMAGE_DIR, builder.CONTEXT_FILES, Path(scratch))
        (context / "wheels").mkdir()
        builder.download_wheels(context / "wheels", lambda line: None)
        digest = builder.inputs_hash(context, image_id(chosen), base.planned_base()[2])
    tag = f"{builder.BUILDER_REPO}:{digest[:12]}"
    if not image_id(tag):
        return "", f"the builder image for the current inputs ({tag}) is not built; run `velofarm image build`"
    return tag, ""


def docker(*args: str, timeout: float = 120) -> str:
    out = subprocess.run([shutil.which("docker") or "docker", *args], capture_output=True, text=True,
                         timeout=timeout, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {out.stderr.strip()}")
    return out.stdout


def volumes(worker: str) -> list[str]:
    prefix = f"velofarm-{worker}-{PLATFORM}"
    return [f"{prefix}-registry", f"{prefix}-target"]


def floor_once(image: str, worker: str) -> float:
    """`docker run --rm` of the builder image as the latent worker starts it, running `true`."""
    mounts = [a for v, dest in zip(volumes(worker), (f"{HOME}/.cargo/registry", f"{HOME}/worker/.cargo-target"),
                                   strict=True) for a in ("-v", f"{v}:{dest}")]
    start = time.perf_counter()
    docker("run", "--rm", "--network", "host", "--init", *mounts, image, "true")
    return time.perf_counter() - start


def container_times(prefix: str, since: float, until: float) -> dict[str, float]:
    """create/start times (epoch seconds) of this farm's containers between two moments."""
    out = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "type=container",
                 "--format", "{{json .}}")
    times: dict[str, float] = {}
    for line in out.splitlines():
        event = json.loads(line)
        name = event.get("Actor", {}).get("Attributes", {}).get("name", "")
        if name.startswith(prefix) and event.get("Action") in ("create", "start"):
            times.setdefault(event["Action"], event["timeNano"] / 1e9)
    return times


def container_prefix(worker: str) -> str:
    # Buildbot names a worker's container buildbot-<worker>-<master hash>, with '_' made '-'.
    return f"buildbot-{worker}-".replace("_", "-")


def farm_once(farm: LocalFarm, worker: str, commit: str) -> dict[str, float]:
    """Force the platform build; stop it once its first step in the container (after Buildbot's
    own worker_preparation) has started; wait until the container is gone. Seconds after the request."""
    requested = time.time()  # the request as the user makes it: the force call
    brid = force(farm.www_port, "bench-rebuild", f"build-{PLATFORM}", tag=TAG, tag_commit=commit)
    events = str(farm.master_dir / "events.jsonl")

    def first_step() -> dict[str, Any] | None:
        seen = read_events(events)
        build = next((e for e in seen if e["key"][0] == "builds" and e["key"][-1] == "new"
                      and e.get("buildrequestid") == brid), None)
        step = build and next((e for e in seen if e["key"][0] == "steps" and e["key"][-1] == "started"
                               and e.get("buildid") == build["buildid"] and e.get("name") != "worker_preparation"),
                              None)
        if not step:
            return None
        connected = [e for e in seen if e["key"][0] == "workers" and e["key"][-1] == "connected"
                     and e.get("name") == worker and e["t"] >= requested]
        return {"build": build["t"], "step": step["t"], "buildid": build["buildid"],
                "connected": connected[0]["t"] if connected else float("nan")}
    seen: dict[str, Any] = wait_for(first_step, 300, f"the first step of build request {brid}", every=0.05)
    api(farm.www_port, f"builds/{seen['buildid']}",
        {"jsonrpc": "2.0", "method": "stop", "id": 1, "params": {"reason": "bench: measured"}})
    wait_for(lambda: not docker("ps", "-aq", "--filter", f"name={container_prefix(worker)}").strip()
             and worker not in {w["name"] for w in api(farm.www_port, "workers")["workers"] if w["connected_to"]},
             120, f"{worker}'s container to be removed")
    box = container_times(container_prefix(worker), requested - 1, time.time())
    if set(box) != {"create", "start"}:
        raise RuntimeError(f"docker events showed no create and start of a {container_prefix(worker)}* container")
    t0 = requested
    return {"total": seen["step"] - t0, "created": box["create"] - t0, "started": box["start"] - t0,
            "connected": seen["connected"] - t0, "build_new": seen["build"] - t0}


def measure(root: Path, procs: Procs, emit: Any, deadline: float) -> dict[str, Any]:
    image, why = current_image()
    if not image:
        return {"skipped": why}
    farm = new_farm(root / "container", [PLATFORM], docker_image=image, worker_prefix=f"bench{os.getpid()}")
    worker = next(iter(farm.docker_workers))
    # Into the remote without its hook: a pushed tag would start a release.
    git("tag", TAG, cwd=farm.src)
    git("fetch", "-q", str(farm.src), f"refs/tags/{TAG}:refs/tags/{TAG}", cwd=farm.remote)
    commit = git("rev-parse", TAG, cwd=farm.src)
    try:
        farm.start_git_daemon()
        start_farm(farm, procs)
        floor_once(image, worker)  # warm-up: the volumes exist from here on, as they do for the farm

        def rep(i: int) -> dict[str, float]:
            floor = floor_once(image, worker)
            got = farm_once(farm, worker, commit)
            emit(f"  {i + 1}: request to first step {got['total']:.2f} s (container created {got['created']:.2f} s, "
                 f"started {got['started']:.2f} s, worker connected {got['connected']:.2f} s, build "
                 f"{got['build_new']:.2f} s); docker run by hand {floor:.2f} s")
            return {**got, "floor": floor}
        return {"image": image, "reps": repeat(rep, REPS, deadline)}
    finally:
        procs.stop_all()
        farm.stop_git_daemon()
        leftover = docker("ps", "-aq", "--filter", f"name={container_prefix(worker)}").split()
        if leftover:
            docker("rm", "--force", *leftover)
        subprocess.run(["docker", "volume", "rm", "--force", *volumes(worker)], capture_output=True, check=False)
