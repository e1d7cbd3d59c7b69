"""Master memory with 20 real buildbot-worker processes connected.

velofarm: its own master config, unchanged (a farm.toml with 20 workers). Baseline: a plain
Buildbot master with the same 20 workers, one trivial builder and the same web UI plugins.
RSS is read from /proc once every worker is connected and the master has settled.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.lab import start_lab
from bench.procs import (
    Procs,
    connected_workers,
    rss_mib,
    start_master,
    start_worker,
    wait_for,
    write_worker_dir,
)
from velofarm.cli.localfarm import write_farm
from velofarm.cli.masterdir import create_master
from velofarm.secretstore import worker_secret_name

REPO = Path(__file__).resolve().parent.parent
COUNT = 20


def settled_rss(pid: int, seconds: float = 3.0) -> float:
    """The highest RSS over a few seconds after everything connected."""
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_mib(pid))
        time.sleep(0.25)
    return max(samples)


def velofarm_master(root: Path, procs: Procs) -> float:
    farm = write_farm(root / "w20-velofarm", REPO / "farm.toml", ["linux-x86_64"], workers_per_platform=COUNT)
    create_master(farm.master_dir, farm.spec_path)
    master = start_master(procs, farm.master_dir, farm.www_port)
    workers = []
    for name in farm.workers:
        password = farm.secrets.get(worker_secret_name(name)) or ""
        directory = write_worker_dir(farm.worker_dir(name), farm.pb_port, name, password)
        workers.append(start_worker(procs, directory))
    wait_for(lambda: len(connected_workers(farm.www_port) & set(farm.workers)) == COUNT, 180,
             f"{COUNT} workers to connect to the velofarm master")
    rss = settled_rss(master.pid)
    for child in [*workers, master]:
        procs.stop(child)
    return rss


def plain_master(root: Path, procs: Procs) -> float:
    own = Procs()  # this master and its workers only
    try:
        lab = start_lab(root / "w20-plain", own, extra_workers=COUNT, plain=True)
        return settled_rss(lab.master.pid)
    finally:
        own.stop_all()


def measure(root: Path, procs: Procs, emit: Any) -> dict[str, Any]:
    velofarm = velofarm_master(root, procs)
    plain = plain_master(root, procs)
    emit(f"  master RSS with {COUNT} workers: velofarm {velofarm:.0f} MiB, plain Buildbot {plain:.0f} MiB")
    return {"velofarm_mib": velofarm, "plain_mib": plain}
