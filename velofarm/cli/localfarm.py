"""A whole farm on this machine: a master, real worker processes, a git remote. For the demo and tests."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from velofarm.buildmaster.farmplan import CHANGE_SECRET
from velofarm.cli.masterdir import buildbot_command, create_master
from velofarm.onboard.workertac import WORKER_CMD, create_worker_dir
from velofarm.release.keys import init_keys
from velofarm.secretstore import SecretStore, worker_secret_name
from velofarm.spec import tomlwrite
from velofarm.tags.notify import install_hook

DOCKER_SOCKET = "unix:///var/run/docker.sock"
START_PATIENCE = 120  # seconds `buildbot start` waits for the master to show progress
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "velostream-mini"


def free_port() -> int:
    """A port that is free now, below Linux's ephemeral range (32768+): a port the kernel handed out
    for port 0 can be handed out again, to any outgoing connection, before the master binds it."""
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000 on 127.0.0.1")


def git(*args: str, cwd: Path | None = None) -> str:
    # Fixed names and dates: the same example gives the same commits, so two farms build
    # byte-identical archives (SOURCE_DATE_EPOCH comes from the tagged commit).
    env = {**os.environ, "GIT_AUTHOR_NAME": "velofarm", "GIT_AUTHOR_EMAIL": "velofarm@localhost",
           "GIT_COMMITTER_NAME": "velofarm", "GIT_COMMITTER_EMAIL": "velofarm@localhost",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


@dataclass
class LocalFarm:
    root: Path
    spec_path: Path
    www_port: int
    pb_port: int
    workers: dict[str, list[str]] = field(default_factory=dict)  # worker processes this farm starts
    git_daemon_port: int = 0  # serve remote.git over git:// on loopback (for build containers)
    docker_workers: dict[str, list[str]] = field(default_factory=dict)  # latent: the master starts them
    master_host: str = "127.0.0.1"  # where the master's PB and upload ports and the git daemon listen

    @property
    def master_dir(self) -> Path:
        return self.root / "master"

    @property
    def src(self) -> Path:
        return self.root / "src"

    @property
    def remote(self) -> Path:
        return self.root / "remote.git"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.www_port}/"

    @property
    def secrets(self) -> SecretStore:
        return SecretStore(self.root / "secrets")

    def worker_dir(self, name: str) -> Path:
        return self.root / "workers" / name

    # --- the source repository -------------------------------------------------------------
    def init_repo(self, example: Path = EXAMPLE) -> None:
        """The example project as a git repository with a local bare remote that notifies the master."""
        shutil.copytree(example, self.src, ignore=shutil.ignore_patterns("target"))
        git("init", "-q", "-b", "main", cwd=self.src)
        git("add", "-A", cwd=self.src)
        git("commit", "-q", "-m", "velostream-mini", cwd=self.src)
        git("init", "-q", "--bare", str(self.remote))
        git("remote", "add", "origin", str(self.remote), cwd=self.src)
        git("push", "-q", "origin", "main", cwd=self.src)
        install_hook(self.remote, sys.executable, f"{self.master_host}:{self.pb_port}",
                     self.secrets.path(CHANGE_SECRET), str(self.remote))

    def set_version(self, version: str) -> None:
        """Commit a new package version (Cargo.toml and Cargo.lock), as a release bump does."""
        for name in ("Cargo.toml", "Cargo.lock"):
            path = self.src / name
            text = path.read_text(encoding="utf-8")
            head, sep, rest = text.partition('name = "velostream"\nversion = "')
            old = rest.split('"', 1)
            path.write_text(head + sep + version + '"' + old[1], encoding="utf-8")
        git("commit", "-q", "-am", f"version {version}", cwd=self.src)
        git("push", "-q", "origin", "main", cwd=self.src)

    def push_tag(self, tag: str, message: str | None = None) -> None:
        if message:
            git("tag", "-a", tag, "-m", message, cwd=self.src)
        else:
            git("tag", tag, cwd=self.src)
        git("push", "-q", "origin", tag, cwd=self.src)

    # --- processes -------------------------------------------------------------------------
    def start_master(self) -> None:
        if not (self.master_dir / "buildbot.tac").exists():
            create_master(self.master_dir, self.spec_path)
        # `buildbot start` gives up after 10 s without a line it counts as progress; on a busy
        # machine loading buildbot.tac alone can take that long (the master was starting fine).
        subprocess.run([*buildbot_command(), "start", f"--start_timeout={START_PATIENCE}", str(self.master_dir)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=START_PATIENCE * 2)

    def stop_master(self) -> None:
        stop_daemon(self.master_dir, [*buildbot_command(), "stop", str(self.master_dir)])

    def reconfig(self) -> None:
        subprocess.run([*buildbot_command(), "reconfig", str(self.master_dir)], check=True,
                       stdout=subprocess.DEVNULL, timeout=120)

    def create_worker(self, name: str, password: str | None = None) -> Path:
        password = password or self.secrets.get(worker_secret_name(name)) or ""
        return create_worker_dir(self.worker_dir(name), f"127.0.0.1:{self.pb_port}", name, password)

    def start_worker(self, name: str) -> None:
        directory = self.worker_dir(name)
        if not (directory / "buildbot.tac").exists():
            self.create_worker(name)
        subprocess.run([*WORKER_CMD, "start", str(directory)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT, timeout=60)

    def stop_worker(self, name: str) -> None:
        stop_daemon(self.worker_dir(name), [*WORKER_CMD, "stop", str(self.worker_dir(name))])

    def kill_worker(self, name: str) -> None:
        """SIGKILL, as a crashed machine would: no goodbye to the master."""
        pid = int((self.worker_dir(name) / "twistd.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        (self.worker_dir(name) / "twistd.pid").unlink(missing_ok=True)

    def start_git_daemon(self) -> None:
        """A build container sees no host folder: it clones remote.git over git:// (on loopback, or on
        the address build containers reach the master at)."""
        if not self.git_daemon_port:
            return
        subprocess.run(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.root}",
                        f"--listen={self.master_host}", f"--port={self.git_daemon_port}", "--detach",
                        f"--pid-file={self.root / 'git-daemon.pid'}", str(self.root)], check=True, timeout=30)
        wait_for(lambda: _port_open(self.git_daemon_port, self.master_host), 30, "git daemon")

    def stop_git_daemon(self) -> None:
        pid_file = self.root / "git-daemon.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
            pid_file.unlink(missing_ok=True)

    def start_all(self) -> None:
        self.start_git_daemon()
        self.start_master()
        for name in self.workers:
            self.start_worker(name)
        self.wait(lambda: self.connected_workers() >= set(self.workers), 60, "workers to connect")
        # "Connected" is recorded before the master hands the worker its builders; only then can a
        # build start on it (a worker frozen in between would never get one).
        self.wait(lambda: all(self.worker_attached(name) for name in self.workers), 60,
                  "workers to be given their builders")

    def worker_attached(self, name: str) -> bool:
        log = self.worker_dir(name) / "twistd.log"
        return log.exists() and "message from master: attached" in log.read_text(errors="replace")

    def stop_all(self) -> None:
        """Stop the workers and the master, then anything still running in the farm's folder (a
        build's cargo, a master caught half-started): nothing this farm started outlives it."""
        for name in self.workers:
            self.stop_worker(name)
        self.stop_master()
        self.stop_git_daemon()
        kill_processes_under(self.root)

    # --- the REST API ----------------------------------------------------------------------
    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}api/v2/{path.lstrip('/')}", timeout=30) as resp:
            return json.load(resp)

    def connected_workers(self) -> set[str]:
        return {w["name"] for w in self.api("workers")["workers"] if w["connected_to"]}

    def builds(self, builder: str) -> list[dict[str, Any]]:
        return list(self.api(f"builders/{builder}/builds?order=number")["builds"])

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
        return wait_for(predicate, timeout, what, every)

    def wait_release(self, number: int = 1, timeout: float = 600) -> dict[str, Any]:
        """The finished release build with this number."""
        def done() -> dict[str, Any] | None:
            builds = [b for b in self.builds("release") if b["number"] == number and b["complete"]]
            return builds[0] if builds else None
        return dict(self.wait(done, timeout, f"release build #{number}", every=0.5))


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll until `predicate` returns something true (connection errors count as not yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except OSError:
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def stop_daemon(directory: Path, stop_command: list[str], grace: float = 30) -> None:
    """Stop a master or worker politely; one that has not exited after `grace` seconds is killed,
    so a test or demo never leaves a process behind."""
    pid_file = directory / "twistd.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip() or 0)
    try:
        subprocess.run(stop_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 5
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)


def docker_worker(image: str | None, network: tuple[str, str] | None = None) -> dict[str, Any]:
    """farm.toml fields of a Docker worker on this machine's engine; {} for a worker process."""
    if not image:
        return {}
    if network:
        return {"docker_host": DOCKER_SOCKET, "image": image, "network": network[0], "master_host": network[1]}
    return {"docker_host": DOCKER_SOCKET, "image": image, "network": "host"}


def write_farm(root: Path, template: Path, platforms: list[str], workers_per_platform: int = 1,
               release: dict[str, Any] | None = None, master: dict[str, Any] | None = None,
               docker_image: str | None = None, docker_network: tuple[str, str] | None = None) -> LocalFarm:
    """A farm.toml for this machine: the template's project, the given platforms, local workers.

    With `docker_image`, every platform builds in Docker latent workers (a fresh container of that
    image per build, on host networking so it reaches the loopback master) instead of worker processes.
    With `docker_network` = (name, gateway address) too, the containers run on that Docker network
    instead (one that can be cut with `docker network disconnect`) and reach the master at the gateway
    address, where its PB and upload ports and the git daemon listen instead of 127.0.0.1.
    """
    data = tomllib.loads(template.read_text(encoding="utf-8"))
    root.mkdir(parents=True, exist_ok=True)
    www_port, pb_port = free_port(), free_port()
    git_port = free_port() if docker_image else 0
    host = docker_network[1] if docker_image and docker_network else "127.0.0.1"
    data["project"]["git_url"] = f"git://{host}:{git_port}/remote.git" if docker_image else str(root / "remote.git")
    # Local workers run this very interpreter: name it rather than a `python3` looked up on PATH
    # (often a pyenv shim, which costs a shell start for every tool step). A container has its own.
    python = {} if docker_image else {"python": sys.executable}
    data["platforms"] = {name: {**python, **data.get("platforms", {}).get(name, {})} for name in platforms}
    workers: dict[str, list[str]] = {}
    for name in platforms:
        for i in range(1, workers_per_platform + 1):
            workers[f"{'docker' if docker_image else 'local'}-{name}-{i}"] = [name]
    data["workers"] = {w: {"platforms": p, "max_builds": 1, **docker_worker(docker_image, docker_network)}
                       for w, p in workers.items()}
    data["release"] = {**data.get("release", {}), "publisher": "directory",
                       "directory": str(root / "releases"), **(release or {})}
    data["master"] = {"www_bind": "127.0.0.1", "www_port": www_port, "url": f"http://127.0.0.1:{www_port}/",
                      "pb_port": pb_port, "db_url": "sqlite:///state.sqlite", "poll_interval": 0,
                      "secrets_dir": str(root / "secrets"),
                      **({"pb_bind": host, "public_host": host} if host != "127.0.0.1" else {}), **(master or {})}
    spec_path = root / "farm.toml"
    spec_path.write_text(tomlwrite.dumps(data), encoding="utf-8")
    farm = LocalFarm(root=root, spec_path=spec_path, www_port=www_port, pb_port=pb_port,
                     workers={} if docker_image else workers, git_daemon_port=git_port,
                     docker_workers=workers if docker_image else {}, master_host=host)
    for worker in farm.workers:
        farm.secrets.generate(worker_secret_name(worker))
    farm.secrets.generate(CHANGE_SECRET)
    # Every local farm signs its releases, as a real one must: keys/ beside its farm.toml.
    init_keys(farm.secrets, root / "keys")
    return farm


def processes_under(root: Path) -> list[int]:
    """Processes whose working folder or command line is inside `root`, other than this process and
    its parents. Read from Linux's /proc; elsewhere the pid files are all there is, so []."""
    proc, inside = Path("/proc"), str(root.resolve())
    if not proc.is_dir():
        return []
    spared, pid = set(), os.getpid()
    while pid > 1 and pid not in spared:  # this process and its parents (e.g. the demo's own --dir)
        spared.add(pid)
        try:
            pid = int((proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in spared:
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone, or not ours to read
            continue
        paths = [cwd, *(a.decode("utf-8", "replace") for a in argv)]
        if any(p == inside or p.startswith(inside + os.sep) or f"={inside}{os.sep}" in p for p in paths):
            found.append(int(entry.name))
    return found


def kill_processes_under(root: Path, grace: float = 5.0) -> list[int]:
    """SIGTERM every process under `root`, SIGKILL those still there after `grace` seconds."""
    pids = processes_under(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            pids = [p for p in pids if _alive(p)]
            time.sleep(0.1)
        if not pids:
            break
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited; its parent has not reaped it yet
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
