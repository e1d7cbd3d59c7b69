"""`make bench`: every benchmark side by side in one run; prints a table, writes bench/results.json
and the results block of BENCHMARKS.md. Numbers, not pass/fail: the exit code is 0 unless a
benchmark could not run.

    .venv/bin/python -m bench.run [--only SECTION ...] [--keep]

The whole run is held to TOTAL seconds: each step may use the time left once the wanted steps
after it have their SHARES reserved, and repeats its measurements as often as that allows
(bench.stats.repeat), so a busy machine gets fewer repetitions, not a longer run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import concurrent, container, dashboard, fanout, markdown, release, report, transfer, verify, workers20
from bench.lab import start_lab
from bench.procs import Procs
from bench.stats import Budget

SECTIONS = ("release", "transfer", "fanout", "verify", "workers20", "concurrent", "container", "dashboard")
STEPS = {"release": {"release"}, "lab": {"fanout", "transfer"}, "verify": {"verify"},
         "farm20": {"workers20", "concurrent"}, "container": {"container"}, "dashboard": {"dashboard"}}
TOTAL = 14 * 60  # seconds: `make bench` ends within 15 minutes, stopping included
SHARES = {"release": 240, "lab": 180, "verify": 40, "farm20": 180, "container": 90, "dashboard": 20}
TRANSFER_REPS = {"loopback_32": 3, "loopback_256": 4, "rtt50_32": 3, "rtt50_256": 1}
FAN_CHILDREN, FAN_REPS = 5, 3


def emit(line: str) -> None:
    print(line, flush=True)


def run_release(root: Path, wanted: set[str], deadline: float) -> dict[str, Any]:
    procs = Procs()
    try:
        emit("tag to release (reproduce = 1 and 2), and warm vs cold rebuilds (the example project):")
        return report.release_metrics(release.measure(root / "release", procs, emit, deadline))
    finally:
        procs.stop_all()


def run_lab(root: Path, wanted: set[str], deadline: float) -> dict[str, Any]:
    """Transfer (with master memory) and fan-out share one bench master."""
    procs, metrics = Procs(), {}
    try:
        lab = start_lab(root / "lab", procs, fan_children=FAN_CHILDREN)
        if "fanout" in wanted:
            emit("fan-out (ReleaseTrigger vs Trigger, 5 children sleeping 2 s):")
            fan_deadline = deadline - (deadline - time.monotonic()) * 0.7 if "transfer" in wanted else deadline
            metrics.update(report.fanout_metrics(fanout.measure(lab, FAN_REPS, FAN_CHILDREN, emit, fan_deadline)))
        if "transfer" in wanted:
            emit("artifact transfer (UploadArtifact vs FileUpload + CommitArtifacts):")
            metrics.update(report.transfer_metrics(transfer.measure(lab, TRANSFER_REPS, emit, deadline)))
    finally:
        procs.stop_all()
    return metrics


def run_farm20(root: Path, wanted: set[str], deadline: float) -> dict[str, Any]:
    """One velofarm farm with 20 workers: its idle RSS, then five releases at once; then plain Buildbot."""
    procs, metrics = Procs(), {}
    try:
        emit("20 connected workers: master memory, and five releases at once:")
        farm, master = workers20.start_velofarm(root / "farm20", procs)
        idle = workers20.settled_rss(master.pid)
        if "concurrent" in wanted:
            metrics.update(report.concurrent_metrics(concurrent.measure(farm, master.pid, emit), max(idle)))
    finally:
        procs.stop_all()
    if "workers20" in wanted:
        plain = workers20.plain_master(root / "farm20")
        emit(workers20.report_line(idle, plain))
        metrics.update(report.workers20_metrics(idle, plain))
    return metrics


def run_container(root: Path, wanted: set[str], deadline: float) -> dict[str, Any]:
    procs = Procs()
    try:
        emit("build request to first step in a fresh Docker container, against `docker run`:")
        raw = container.measure(root / "container", procs, emit, deadline)
    finally:
        procs.stop_all()
    if "skipped" in raw:
        emit(f"  skipped: {raw['skipped']}")
        SKIPPED.append(f"container_start_s ({raw['skipped']})")
        return {}
    return report.container_metrics(raw)


def run_verify(root: Path, wanted: set[str], deadline: float) -> dict[str, Any]:
    emit("release step SHA-256 vs hashlib (2 x 256 MiB archives):")
    return report.verify_metrics(verify.measure(root / "verify", emit))


def run_dashboard(root: Path, wanted: set[str], deadline: float) -> dict[str, Any]:
    emit("Releases page for 500 tags:")
    return report.dashboard_metrics(dashboard.measure(root / "dashboard", emit))


RUNNERS: dict[str, Callable[[Path, set[str], float], dict[str, Any]]] = {
    "release": run_release, "lab": run_lab, "verify": run_verify, "farm20": run_farm20,
    "container": run_container, "dashboard": run_dashboard}
SKIPPED: list[str] = []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, masters)")
    args = parser.parse_args(argv)
    wanted = set(args.only or SECTIONS)
    steps = [name for name, sections in STEPS.items() if sections & wanted]
    root = Path(tempfile.mkdtemp(prefix="velofarm-bench-"))
    start, load = time.monotonic(), os.getloadavg()
    budget = Budget(TOTAL, SHARES, steps, start)
    emit(f"velofarm bench in {root} ({report.machine()}); load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
         f"steps {', '.join(steps)} within {TOTAL} s")
    metrics: dict[str, Any] = {}
    try:
        for name in steps:
            began = time.monotonic()
            metrics.update(RUNNERS[name](root, wanted, budget.deadline(name)))
            emit(f"  [{name}: {time.monotonic() - began:.0f} s; {time.monotonic() - start:.0f} s so far]")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    elapsed, end_load = time.monotonic() - start, os.getloadavg()
    note = (f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s, sections "
            f"{', '.join(s for s in SECTIONS if s in wanted)}; load average (1, 5, 15 min) {load[0]:.2f} "
            f"{load[1]:.2f} {load[2]:.2f} at start, {end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f} at end "
            f"({os.cpu_count()} CPUs). Machine: {report.machine()}."
            + (f" Skipped: {'; '.join(SKIPPED)}." if SKIPPED else ""))
    results = report.merge(metrics)
    markdown.write(results, note)
    emit("")
    emit(markdown.table(results))
    emit(f"\n{note}\nwrote {report.RESULTS} and {markdown.MARKDOWN}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
