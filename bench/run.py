"""`make bench`: every benchmark side by side in one run; prints a table, writes bench/results.json
and the results block of BENCHMARKS.md. Numbers, not pass/fail: the exit code is 0 unless a
benchmark could not run.

    .venv/bin/python -m bench.run [--only release|transfer|fanout|verify|workers20|dashboard ...] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import dashboard, fanout, release, report, transfer, verify, workers20
from bench.lab import start_lab
from bench.procs import Procs

SECTIONS = ("release", "transfer", "fanout", "verify", "workers20", "dashboard")
BUDGET = 9 * 60  # seconds: a section that would start later is skipped (make bench stays under 10 min)
TRANSFER_REPS = {"loopback_32": 3, "loopback_256": 4, "rtt50_32": 3, "rtt50_256": 1}
FAN_CHILDREN, FAN_REPS = 5, 3


def emit(line: str) -> None:
    print(line, flush=True)


def run_lab(root: Path, wanted: set[str]) -> dict[str, Any]:
    """Transfer (with master memory) and fan-out share one bench master."""
    procs, metrics = Procs(), {}
    try:
        lab = start_lab(root / "lab", procs, fan_children=FAN_CHILDREN)
        if "fanout" in wanted:
            emit("fan-out (ReleaseTrigger vs Trigger, 5 children sleeping 2 s):")
            metrics.update(report.fanout_metrics(fanout.measure(lab, FAN_REPS, FAN_CHILDREN, emit)))
        if "transfer" in wanted:
            emit("artifact transfer (UploadArtifact vs FileUpload + CommitArtifacts):")
            metrics.update(report.transfer_metrics(transfer.measure(lab, TRANSFER_REPS, emit)))
    finally:
        procs.stop_all()
    return metrics


def run_release(root: Path) -> dict[str, Any]:
    procs = Procs()
    try:
        emit("tag to release, and warm vs cold rebuild (the example project):")
        return report.release_metrics(release.measure(root / "release", procs, emit))
    finally:
        procs.stop_all()


def run_workers20(root: Path) -> dict[str, Any]:
    procs = Procs()
    try:
        emit("master memory with 20 workers:")
        return report.workers20_metrics(workers20.measure(root / "workers20", procs, emit))
    finally:
        procs.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, masters)")
    args = parser.parse_args(argv)
    wanted = set(args.only or SECTIONS)
    root = Path(tempfile.mkdtemp(prefix="velofarm-bench-"))
    start, load = time.monotonic(), os.getloadavg()
    emit(f"velofarm bench in {root} ({report.machine()}); load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    metrics: dict[str, Any] = {}
    skipped: list[str] = []
    steps = [("release", lambda: run_release(root)),
             ("lab", lambda: run_lab(root, wanted)),
             ("verify", lambda: verify_section(root)),
             ("workers20", lambda: run_workers20(root)),
             ("dashboard", lambda: dashboard_section(root))]
    try:
        for name, step in steps:
            if name == "lab" and not wanted & {"transfer", "fanout"} or name != "lab" and name not in wanted:
                continue
            if time.monotonic() - start > BUDGET:
                skipped.append(name)
                continue
            metrics.update(step())
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    elapsed, end_load = time.monotonic() - start, os.getloadavg()
    note = (f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {elapsed:.0f} s, sections "
            f"{', '.join(sorted(wanted))}; load average {load[0]:.2f} at start, {end_load[0]:.2f} at end "
            f"({os.cpu_count()} CPUs, shared). Machine: {report.machine()}."
            + (f" Skipped over the time budget: {', '.join(skipped)}." if skipped else ""))
    results = report.merge(metrics)
    report.write(results, note)
    emit("")
    emit(report.table(results))
    emit(f"\n{note}\nwrote {report.RESULTS} and {report.MARKDOWN}")
    return 0


def dashboard_section(root: Path) -> dict[str, Any]:
    emit("Releases page for 500 tags:")
    return report.dashboard_metrics(dashboard.measure(root / "dashboard", emit))


def verify_section(root: Path) -> dict[str, Any]:
    emit("release step SHA-256 vs hashlib (2 x 256 MiB archives):")
    return report.verify_metrics(verify.measure(root / "verify", emit))


if __name__ == "__main__":
    sys.exit(main())
