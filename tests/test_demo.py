"""`velofarm demo`: a stop signal stops everything it started, and a flaky REST API does not end it."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, need_host_toolchains

from velofarm.cli.demo import MasterPoller
from velofarm.cli.localfarm import free_port, kill_processes_under, processes_under
from velofarm.errors import VelofarmError

ANSWER = {"builds": [{"number": 1}]}


class FlakyMaster(BaseHTTPRequestHandler):
    """Answers GET with ANSWER after failing in the ways a loaded master does, in `failures` order."""

    protocol_version = "HTTP/1.1"
    failures: list[str] = []
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        how = self.failures.pop(0) if self.failures else "ok"
        body = json.dumps(ANSWER).encode()
        if how == "reset":  # no answer, a TCP reset
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        status = {"ok": 200, "incomplete": 200, "half-json": 200, "503": 503, "404": 404}[how]
        if how == "half-json":
            body = body[: len(body) // 2]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) * (4 if how == "incomplete" else 1)))
        self.end_headers()
        self.wfile.write(body)
        if how == "incomplete":  # fewer bytes than announced, then the connection ends: IncompleteRead
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[type[FlakyMaster]]:
    handler = type("Flaky", (FlakyMaster,), {"failures": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/"  # type: ignore[attr-defined]
    yield handler
    server.shutdown()
    server.server_close()


def poller(url: str, tmp_path: Path, give_up_after: float = 20.0) -> MasterPoller:
    return MasterPoller(url, tmp_path / "twistd.log", give_up_after=give_up_after, retry_every=0.05, timeout=5)


def test_a_failed_poll_is_retried(flaky: type[FlakyMaster], tmp_path: Path) -> None:
    flaky.failures += ["incomplete", "reset", "503", "half-json"]
    assert poller(flaky.url, tmp_path).get("builders/release/builds") == ANSWER  # type: ignore[attr-defined]
    assert flaky.seen == ["/api/v2/builders/release/builds"] * 5


def test_a_refusal_is_not_retried(flaky: type[FlakyMaster], tmp_path: Path) -> None:
    flaky.failures.append("404")
    with pytest.raises(VelofarmError, match=r"answered 404 to api/v2/builders/x/builds; see .*twistd.log"):
        poller(flaky.url, tmp_path).get("builders/x/builds")  # type: ignore[attr-defined]
    assert len(flaky.seen) == 1


def test_only_a_master_that_stays_away_ends_the_demo(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(VelofarmError, match=r"has not answered for 1 s \(last: .*Connection refused.*the demo stops"):
        poller(url, tmp_path, give_up_after=1.0).get("builders")
    assert time.monotonic() - started >= 1.0


def test_processes_under_a_folder_are_found_and_stopped(tmp_path: Path) -> None:
    inside = subprocess.Popen(["sleep", "300"], cwd=tmp_path)
    named = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", str(tmp_path / "x")])
    outside = subprocess.Popen(["sleep", "300"], cwd=REPO)
    try:
        # Popen returns after fork, maybe before the child's chdir and exec: wait until both show.
        deadline = time.monotonic() + 10
        while set(processes_under(tmp_path)) != {inside.pid, named.pid} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert set(processes_under(tmp_path)) == {inside.pid, named.pid}
        assert kill_processes_under(tmp_path) == []
        assert inside.wait(10) == named.wait(10) == -signal.SIGTERM
        assert outside.poll() is None
    finally:
        for p in (inside, named, outside):
            p.kill()
            p.wait()


# -- the whole demo, stopped by a signal ---------------------------------------------------------

def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    raise AssertionError(f"no {needle!r} from the demo within {timeout:.0f} s:\n{''.join(seen)}")


@pytest.mark.integration
@pytest.mark.parametrize("signum, moment", [(signal.SIGTERM, "cargo build"), (signal.SIGINT, "pushed"),
                                            (signal.SIGHUP, "pushed")], ids=["SIGTERM", "SIGINT", "SIGHUP"])
def test_a_stop_signal_leaves_no_process_behind(tmp_path: Path, signum: int, moment: str) -> None:
    need_host_toolchains()
    demo_dir = tmp_path / "demo"
    # --no-docker: this is about the demo's own processes (the master and host workers).
    proc = subprocess.Popen([sys.executable, "-u", "-m", "velofarm.cli.main", "demo", "--no-docker", "--dir", str(demo_dir)],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen: list[str] = []
    try:
        wait_for_line(proc, moment, 600, seen)  # the master and workers run, the release is under way
        running = processes_under(demo_dir)
        assert len(running) >= 3, f"expected a master and workers under {demo_dir}: {running}"
        proc.send_signal(signum)
        rest, _ = proc.communicate(timeout=180)
        seen.append(rest)
        assert proc.returncode == 128 + signum, "".join(seen)
        assert f"stopped   by {signal.Signals(signum).name}" in rest
        assert processes_under(demo_dir) == [], "".join(seen)
        assert not any((demo_dir / d / "twistd.pid").exists()
                       for d in ["master", *(f"workers/{w}" for w in os.listdir(demo_dir / "workers"))])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_processes_under(demo_dir)
