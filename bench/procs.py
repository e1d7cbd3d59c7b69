"""The processes a benchmark starts (masters, workers, proxies), the REST calls it makes, and
master memory. Every process is started here and stopped by its own pid at the end."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.events import read_events
from velofarm.cli.masterdir import TAC, buildbot_command
from velofarm.onboard.workertac import WORKER_CMD

REPO = Path(__file__).resolve().parent.parent

WORKER_TAC = '''import os
from buildbot_worker.bot import Worker
from twisted.application import service
basedir = os.path.abspath(os.path.dirname(__file__))
application = service.Application('buildbot-worker')
Worker({host!r}, {port}, {name!r}, open(os.path.join(basedir, "worker.password")).read().strip(), basedir,
       600, umask=0o22, maxdelay=2).setServiceParent(application)
'''


class Procs:
    """Child processes of one benchmark run; `stop_all` ends each by pid (TERM, then KILL)."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def spawn(self, argv: list[str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        with open(log, "ab") as out:
            child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.children.append(child)
        return child

    def stop(self, child: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        if child in self.children:
            self.children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)


def write_master_dir(basedir: Path, master_cfg: str) -> None:
    """buildbot.tac + master.cfg, then upgrade-master to create the database."""
    basedir.mkdir(parents=True, exist_ok=True)
    (basedir / "buildbot.tac").write_text(TAC, encoding="utf-8")
    (basedir / "master.cfg").write_text(master_cfg, encoding="utf-8")
    subprocess.run([*buildbot_command(), "upgrade-master", "--quiet", str(basedir)], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})


def start_master(procs: Procs, basedir: Path, www_port: int, timeout: float = 90) -> subprocess.Popen[bytes]:
    child = procs.spawn([*buildbot_command(), "start", "--nodaemon", str(basedir)], basedir,
                        basedir / "stdout.log")
    wait_for(lambda: child.poll() is None and api(www_port, "masters") is not None, timeout,
             f"the master in {basedir}", lambda: child.poll() is not None)
    return child


def write_worker_dir(directory: Path, pb_port: int, name: str, password: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "buildbot.tac").write_text(WORKER_TAC.format(host="127.0.0.1", port=pb_port, name=name),
                                            encoding="utf-8")
    (directory / "worker.password").write_text(password + "\n", encoding="utf-8")
    return directory


def start_worker(procs: Procs, directory: Path) -> subprocess.Popen[bytes]:
    return procs.spawn([*WORKER_CMD, "start", "--nodaemon", str(directory)], directory,
                       directory / "stdout.log")


def connected_workers(www_port: int) -> set[str]:
    found = api(www_port, "workers") or {"workers": []}
    return {w["name"] for w in found["workers"] if w["connected_to"]}


def api(www_port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST a JSON-RPC body to) the master's REST API; None while it is not answering."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{www_port}/api/v2/{path}", data=data,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)
    except (OSError, ValueError, http.client.HTTPException):  # refused, reset, or an answer cut short
        if body is not None:
            raise
        return None


def force(www_port: int, scheduler: str, builder: str, **props: Any) -> int:
    """Start a build through a ForceScheduler; its build request id."""
    builderid = api(www_port, f"builders/{builder}")["builders"][0]["builderid"]
    reply = api(www_port, f"forceschedulers/{scheduler}",
                {"jsonrpc": "2.0", "method": "force", "id": 1, "params": {"builderid": builderid, **props}})
    if "error" in reply:
        raise RuntimeError(f"force {builder}: {reply['error']}")
    return int(next(iter(reply["result"][1].values())))


def wait_build(www_port: int, brid: int, timeout: float = 300, events: Path | None = None) -> dict[str, Any]:
    """The finished build of a request, with its properties. With the master's EventRecorder file,
    waits by reading it rather than by polling the master (whose load is part of what is measured)."""
    if events is not None:
        wait_for(lambda: any(e["key"][0] == "builds" and e["key"][-1] == "finished" and e.get("buildrequestid") == brid
                             for e in read_events(str(events))), timeout, f"build request {brid}", every=0.05)

    def done() -> dict[str, Any] | None:
        found = api(www_port, f"builds?buildrequestid={brid}&property=*") or {"builds": []}
        builds = [b for b in found["builds"] if b["complete"]]
        return builds[-1] if builds else None
    build: dict[str, Any] = wait_for(done, timeout, f"build request {brid}", every=0.05 if events is None else 0.2)
    if build["results"] != 0:
        raise RuntimeError(f"build request {brid} ended with result {build['results']}: "
                           f"{build['state_string']}")
    return build


def prop(build: dict[str, Any], name: str) -> Any:
    return build["properties"][name][0]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             failed: Callable[[], bool] | None = None, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if failed is not None and failed():
            raise RuntimeError(f"{what} exited early; see its twistd.log")
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def rss_mib(pid: int) -> float:
    """Resident set size of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"process {pid} has no VmRSS")


def python() -> str:
    return sys.executable
