"""The bench master with its workers and delay proxies, up and connected (see benchmaster.py)."""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

from bench.benchmaster import MASTER_CFG
from bench.procs import (
    Procs,
    connected_workers,
    start_master,
    start_worker,
    wait_for,
    write_master_dir,
    write_worker_dir,
)
from velofarm.cli.localfarm import free_port

DELAY = 0.025  # seconds each way: a 50 ms round trip


@dataclass
class Lab:
    root: Path
    www_port: int
    master: Popen[bytes]
    data: Path
    artifacts: Path


def start_proxy(procs: Procs, root: Path, target_port: int, delay: float = DELAY) -> int:
    port = free_port()
    argv = [sys.executable, "-m", "bench.proxy", "--listen", str(port),
            "--target", f"127.0.0.1:{target_port}", "--delay", str(delay)]
    procs.spawn(argv, root, root / f"proxy-{port}.log")
    return port


def start_lab(root: Path, procs: Procs, fan_children: int = 5, fan_sleep: float = 2.0,
              extra_workers: int = 0, plain: bool = False) -> Lab:
    """A bench master with near/far upload workers and fan-out workers, all connected."""
    root.mkdir(parents=True, exist_ok=True)
    www, pb, upload = free_port(), free_port(), free_port()
    proxy_pb = start_proxy(procs, root, pb) if not plain else 0
    proxy_up = start_proxy(procs, root, upload) if not plain else 0
    workers: dict[str, dict[str, object]] = {}
    if plain:
        workers = {f"w{i}": {"password": secrets.token_hex(8)} for i in range(1, extra_workers + 1)}
    else:
        workers["near"] = {"password": secrets.token_hex(8)}
        workers["far"] = {"password": secrets.token_hex(8),
                          "properties": {"velofarm_upload_url": f"http://127.0.0.1:{proxy_up}/upload/"}}
        workers.update({f"fan-{i}": {"password": secrets.token_hex(8)} for i in range(1, fan_children + 1)})
    data, artifacts = root / "data", root / "artifacts"
    data.mkdir(exist_ok=True)
    params = {"www_port": www, "pb_port": pb, "upload_port": upload, "workers": workers, "plain": plain,
              "data": str(data), "artifacts": str(artifacts),
              "fan_children": fan_children, "fan_sleep": fan_sleep,
              "www_plugins": {"waterfall_view": {}, "console_view": {}, "grid_view": {}} if plain else {}}
    basedir = root / "master"
    basedir.mkdir(parents=True, exist_ok=True)
    (basedir / "params.json").write_text(json.dumps(params), encoding="utf-8")
    write_master_dir(basedir, MASTER_CFG)
    master = start_master(procs, basedir, www)
    for name, w in workers.items():
        port = proxy_pb if name == "far" else pb
        start_worker(procs, write_worker_dir(root / "workers" / name, port, name, str(w["password"])))
    wait_for(lambda: connected_workers(www) >= set(workers), 120, "the bench workers to connect")
    return Lab(root=root, www_port=www, master=master, data=data, artifacts=artifacts)
