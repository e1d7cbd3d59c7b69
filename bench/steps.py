"""Steps per platform build and the wall time of a warm one, read from a real farm's REST API.

The bench farm of bench/release.py (velofarm's own config, one real worker per platform) releases
the example project once (cold), then rebuilds one platform REPS times with a warm cargo cache.
Printed per build: its steps (Buildbot's own worker_preparation included), its wall time
(complete_at - started_at, whole seconds as the REST API keeps them), the cargo step's time and the
rest (step records, process starts, transfers). Numbers, not pass/fail.

    .venv/bin/python -m bench.steps [--reps N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.farms import REBUILT, new_farm, start_farm
from bench.procs import Procs, api, force, wait_build
from bench.release import PLATFORMS
from velofarm.cli.localfarm import git

TAG = "v0.1.0"  # the example's own version


def build_facts(www_port: int, buildid: int) -> dict[str, Any]:
    build = api(www_port, f"builds/{buildid}")["builds"][0]
    steps = api(www_port, f"builds/{buildid}/steps")["steps"]
    cargo = next(s for s in steps if s["name"] == "cargo build")
    wall = build["complete_at"] - build["started_at"]
    cargo_s = cargo["complete_at"] - cargo["started_at"]
    return {"steps": [s["name"] for s in steps], "wall_s": wall, "cargo_s": cargo_s, "rest_s": wall - cargo_s,
            "step_s": {s["name"]: s["complete_at"] - s["started_at"] for s in steps}}


def measure(root: Path, reps: int) -> dict[str, Any]:
    procs = Procs()
    try:
        farm = new_farm(root, PLATFORMS)
        start_farm(farm, procs)
        git("tag", TAG, cwd=farm.src)
        git("push", "-q", "origin", TAG, cwd=farm.src)
        release = farm.wait_release(1, timeout=900)
        if release["results"] != 0:
            raise RuntimeError(f"the bench release failed: {release['state_string']}")
        first = api(farm.www_port, f"builders/build-{REBUILT}/builds")["builds"][0]
        cold = build_facts(farm.www_port, first["buildid"])
        commit = git("rev-parse", f"{TAG}^{{commit}}", cwd=farm.src)
        warm = []
        for _ in range(reps):
            brid = force(farm.www_port, "bench-rebuild", f"build-{REBUILT}", tag=TAG, tag_commit=commit)
            warm.append(build_facts(farm.www_port, wait_build(farm.www_port, brid)["buildid"]))
        return {"cold": cold, "warm": warm}
    finally:
        procs.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="velofarm-bench-steps-") as tmp:
        found = measure(Path(tmp), args.reps)
    cold, warm = found["cold"], found["warm"]
    print(f"{REBUILT}: {len(cold['steps'])} steps: {', '.join(cold['steps'])}")
    print(f"  first (cold) build: {cold['wall_s']:.2f} s (cargo {cold['cargo_s']:.2f} s)")
    for i, w in enumerate(warm, 1):
        print(f"  warm rebuild {i}: {w['wall_s']:.2f} s (cargo {w['cargo_s']:.2f} s, the rest {w['rest_s']:.2f} s)")
    print(f"  warm median: {statistics.median(w['wall_s'] for w in warm):.2f} s, the rest (not cargo) "
          f"{statistics.median(w['rest_s'] for w in warm):.2f} s")
    # The REST API keeps whole seconds: a step under a second shows as 0 or 1.
    print("  last warm rebuild, seconds per step: " + ", ".join(f"{k} {v:.0f}" for k, v in warm[-1]["step_s"].items()))


if __name__ == "__main__":
    main()
