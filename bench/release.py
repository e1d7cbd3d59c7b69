"""Tag to release, reproduce = 2 against reproduce = 1, and warm vs cold rebuilds of one platform.

Two local farms on velofarm's own config (bench.farms), linux-x86_64 and windows-x86_64-gnu, two
real workers per platform: one with `[release] reproduce = 1`, one with `reproduce = 2`. Each
repetition bumps the example's version, tags it, and releases it on both farms, one after the
other. Baseline for the tag-to-release overhead: the same cargo command (spec.job.build_argv +
build_env) run directly on a clone of the tag, both platforms at once as the farm runs them, cold
(the example has no dependencies, so a new version compiles everything in the farm too), right
before and right after the reproduce = 1 release; their mean is that repetition's baseline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.farms import REBUILT, Timeline, builds_of_tag, bump, new_farm, push_tags, release_of, start_farm
from bench.procs import Procs, force, wait_build
from bench.stats import repeat
from velofarm.artifacts.store import build_dir
from velofarm.cli.localfarm import LocalFarm, git
from velofarm.spec.farm import load_spec
from velofarm.spec.job import archive_name, build_argv
from velofarm.worker_tools import preflight

PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu"]
RELEASE_REPS, REBUILD_REPS = 3, 3


def direct_builds(farm: LocalFarm, root: Path, tag: str) -> dict[str, float]:
    """Each platform's cargo command run directly on a fresh clone of the tag, all at once: wall seconds."""
    spec = load_spec(farm.spec_path)
    times: dict[str, float] = {}

    def one(name: str) -> None:
        work = root / f"direct-{tag}-{time.monotonic_ns()}" / name
        git("clone", "-q", "--branch", tag, str(farm.src), str(work / "src"))
        epoch = int(git("log", "-1", "--format=%ct", cwd=work / "src"))
        platform = spec.platforms[name].to_json()
        env = {**os.environ, **preflight.build_env(platform, work / "src", epoch),
               "CARGO_TARGET_DIR": str(work / "target"), "CARGO_TERM_COLOR": "never"}
        start = time.monotonic()
        subprocess.run(build_argv(platform), cwd=work / "src", env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name] = time.monotonic() - start
        shutil.rmtree(work.parent, ignore_errors=True)

    threads = [threading.Thread(target=one, args=(name,)) for name in PLATFORMS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(times) != len(PLATFORMS):
        raise RuntimeError(f"a direct cargo build of {tag} failed; run it by hand in {root} to see why")
    return times


def breakdown(farm: LocalFarm, tag: str, pushed: float) -> dict[str, Any]:
    """Seconds from the tag push to each part of one release, from the farm's event times."""
    tl = Timeline(farm)
    release = release_of(farm, tag)["buildid"]
    r0, r1 = tl.build_span(release)
    change = next((float(e["t"]) for e in tl.events if e["key"][0] == "changes" and e["key"][-1] == "new"
                   and float(e["t"]) >= pushed), r0)
    platforms: dict[str, Any] = {}
    for name in PLATFORMS:
        for build in builds_of_tag(farm, f"build-{name}", tag)[:1]:
            b0, b1 = tl.build_span(build["buildid"])
            steps = tl.steps(build["buildid"])
            platforms[name] = {"starts": b0 - pushed, "ends": b1 - pushed, "build": b1 - b0,
                               "steps": [[n, round(t1 - t0, 3)] for n, t0, t1 in steps],
                               "between_steps": (b1 - b0) - sum(t1 - t0 for _, t0, t1 in steps)}
    coordinator = tl.steps(release)
    publish = tl.step(release, "publish")
    published = publish[1] if publish else r1
    last_end = max((p["ends"] for p in platforms.values()), default=0.0)
    trigger = tl.step(release, "build platforms")
    return {"change_at_master": change - pushed, "release_starts": r0 - pushed, "platforms": platforms,
            "coordinator_resumes": (trigger[1] - pushed - last_end) if trigger else None,
            "coordinator_steps": [[n, round(t1 - t0, 3)] for n, t0, t1 in coordinator if t1 - t0 >= 0.005],
            "total": published - pushed}


def release_once(farm: LocalFarm, tag: str) -> dict[str, Any]:
    pushed = push_tags(farm, tag)
    release_of(farm, tag, since=pushed, timeout=900)
    return breakdown(farm, tag, pushed)


def rebuild(farm: LocalFarm, tag: str, commit: str, worker: str) -> tuple[float, float, bytes]:
    """Force one platform's rebuild of a tag on one worker: build seconds, cargo step seconds, archive."""
    brid = force(farm.www_port, "bench-rebuild", f"build-{REBUILT}", tag=tag, tag_commit=commit, bench_worker=worker)
    build = wait_build(farm.www_port, brid, timeout=600, events=farm.master_dir / "events.jsonl")
    tl = Timeline(farm)
    b0, b1 = tl.build_span(build["buildid"])
    cargo = tl.step(build["buildid"], "cargo") or (0.0, 0.0)
    return b1 - b0, cargo[1] - cargo[0], stored_archive(farm, tag, build["buildid"])


def stored_archive(farm: LocalFarm, tag: str, buildid: int) -> bytes:
    spec = load_spec(farm.spec_path)
    name = archive_name(spec.project.name, tag, spec.platforms[REBUILT])
    return (build_dir(farm.master_dir / "artifacts", tag, REBUILT, buildid) / name).read_bytes()


def warm_and_cold(farm: LocalFarm, tag: str, emit: Any, deadline: float) -> dict[str, Any]:
    """Rebuilds of the last released tag on the worker that built it: warm (its .cargo-target from
    that build) then cold (that cache deleted), REBUILD_REPS pairs; all archives must be identical."""
    built = builds_of_tag(farm, f"build-{REBUILT}", tag)[0]
    worker = built["properties"]["workername"][0]
    commit = git("rev-parse", f"{tag}^{{commit}}", cwd=farm.src)
    first = stored_archive(farm, tag, built["buildid"])

    def pair(i: int) -> dict[str, Any]:
        warm, warm_cargo, warm_bytes = rebuild(farm, tag, commit, worker)
        shutil.rmtree(farm.worker_dir(worker) / ".cargo-target", ignore_errors=True)
        cold, cold_cargo, cold_bytes = rebuild(farm, tag, commit, worker)
        emit(f"  {REBUILT} rebuild {i + 1} alone on {worker}: warm {warm:.1f} s (cargo {warm_cargo:.1f} s), "
             f"cold {cold:.1f} s (cargo {cold_cargo:.1f} s)")
        return {"warm_s": warm, "cold_s": cold, "warm_cargo_s": warm_cargo, "cold_cargo_s": cold_cargo,
                "identical": first == warm_bytes == cold_bytes}
    return {"pairs": repeat(pair, REBUILD_REPS, deadline)}


def measure(root: Path, procs: Procs, emit: Any, deadline: float) -> dict[str, Any]:
    once = new_farm(root / "reproduce-1", PLATFORMS, workers_per_platform=2, reproduce=1)
    twice = new_farm(root / "reproduce-2", PLATFORMS, workers_per_platform=2, reproduce=2)
    with ThreadPoolExecutor(2) as pool:  # both farms start at once: their start is not measured
        for started in [pool.submit(start_farm, farm, procs) for farm in (once, twice)]:
            started.result()
    rebuild_share = (deadline - time.monotonic()) * 0.25  # the warm/cold pairs' part of the section

    def rep(i: int) -> dict[str, Any]:
        tag = f"v1.{i}.0"
        bump(once, tag)
        bump(twice, tag)
        before = direct_builds(once, root, tag)
        r1 = release_once(once, tag)
        after = direct_builds(once, root, tag)
        r2 = release_once(twice, tag)
        direct = {k: (before[k] + after[k]) / 2 for k in before}
        baseline = max(direct.values())
        emit(f"  {tag}: direct cargo (both at once, cold) {_fmt(before)} before, {_fmt(after)} after; "
             f"released in {r1['total']:.1f} s (overhead {r1['total'] - baseline:.1f} s), "
             f"with reproduce = 2 in {r2['total']:.1f} s")
        return {"tag": tag, "direct": direct, "direct_before": before, "direct_after": after,
                "baseline": baseline, "total": r1["total"], "reproduce2_total": r2["total"],
                "phases": r1, "reproduce2_phases": r2}
    reps = repeat(rep, RELEASE_REPS, deadline - rebuild_share)
    return {"reps": reps, **warm_and_cold(once, reps[-1]["tag"], emit, deadline)}


def _fmt(times: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
