"""Master memory with 20 real buildbot-worker processes connected.

velofarm: its own master config, unchanged (a farm.toml with linux-x86_64 and windows-x86_64-gnu,
10 workers each; the same farm then releases five tags at once, bench.concurrent). Baseline: a
plain Buildbot master with the same 20 workers, one trivial builder and the same web UI plugins.
RSS is read from /proc once every worker is connected and the master has settled.
"""

from __future__ import annotations

import time
from pathlib import Path
from subprocess import Popen

from bench.farms import new_farm, start_farm
from bench.lab import start_lab
from bench.procs import Procs, rss_mib
from velofarm.cli.localfarm import LocalFarm

PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu"]
COUNT = 20


def settled_rss(pid: int, seconds: float = 3.0) -> list[float]:
    """RSS samples over a few seconds after everything connected (the figure is their highest)."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_mib(pid))
        time.sleep(0.25)
    return samples


def start_velofarm(root: Path, procs: Procs) -> tuple[LocalFarm, Popen[bytes]]:
    farm = new_farm(root / "w20-velofarm", PLATFORMS, workers_per_platform=COUNT // len(PLATFORMS))
    return farm, start_farm(farm, procs)


def plain_master(root: Path) -> list[float]:
    own = Procs()  # this master and its workers only
    try:
        lab = start_lab(root / "w20-plain", own, extra_workers=COUNT, plain=True)
        return settled_rss(lab.master.pid)
    finally:
        own.stop_all()


def report_line(velofarm: list[float], plain: list[float]) -> str:
    return (f"  master RSS with {COUNT} workers: velofarm {max(velofarm):.0f} MiB, "
            f"plain Buildbot {max(plain):.0f} MiB")
