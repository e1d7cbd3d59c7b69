"""`velofarm demo`: the whole release of the example on this machine, watched live in the terminal."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.errors import VelofarmError
from velofarm.release.keys import load_trusted_keys
from velofarm.release.verify import verify_release
from velofarm.spec.farm import Spec, load_spec
from velofarm.worker_tools.preflight import check_toolchain

MARKER = ".velofarm-demo"
TAG = "v0.1.0"
UNREACHABLE_AFTER = 30.0  # seconds without an answer from the master before the demo gives up
# A busy master can reset a connection, cut an answer short (IncompleteRead, half a JSON) or time out.
TRANSIENT = (OSError, http.client.HTTPException, ValueError)


def buildable_platforms(spec: Spec) -> tuple[list[str], dict[str, list[str]]]:
    """Platforms whose toolchain this host has, and for the others what is missing and how to fix it."""
    ok, skipped = [], {}
    for name, platform in spec.platforms.items():
        missing = [c for c in check_toolchain(platform.to_json(), spec.project.needs_protoc) if not c.ok]
        if missing:
            skipped[name] = [f"{c.name}: {c.detail} -> {c.fix}" for c in missing]
        else:
            ok.append(name)
    return ok, skipped


def prepare_dir(directory: Path) -> None:
    """A fresh scratch folder; an old demo there is stopped and removed, anything else is refused."""
    if directory.exists() and any(directory.iterdir()):
        if not (directory / MARKER).exists():
            raise VelofarmError(f"{directory}: exists and is not a velofarm demo folder; pick another --dir")
        old = LocalFarm(directory, directory / "farm.toml", 0, 0,
                        {p.name: [] for p in (directory / "workers").glob("*")} if (directory / "workers").exists() else {})
        old.stop_all()
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("velofarm demo scratch folder; safe to delete\n")


def container_image(use_docker: bool) -> str | None:
    """The builder image's tag when a Docker engine is here (built first, reused later), else None."""
    from velofarm.images.builder import build_builder
    from velofarm.images.engine import engine_problem
    if not use_docker:
        print("workers   host worker processes (--no-docker)")
        return None
    problem = engine_problem()
    if problem:
        print(f"workers   host worker processes: no Docker engine reachable ({problem})")
        return None
    image = build_builder(lambda line: print(line, flush=True))
    print(f"workers   Docker containers of {image.tag} ({image.image_id[:19]}), a fresh one per build")
    return image.tag


def container_platforms(spec: Spec) -> tuple[list[str], dict[str, list[str]]]:
    """The platforms the builder image has toolchains for; the others are skipped, saying why."""
    from velofarm.images.builder import IMAGE_PLATFORMS
    ok = [name for name in spec.platforms if name in IMAGE_PLATFORMS]
    return ok, {name: ["the builder image has no toolchain for it (images/builder/Dockerfile)"]
                for name in spec.platforms if name not in IMAGE_PLATFORMS}


def run_demo(directory: Path, once: bool, spec_template: Path, use_docker: bool = True) -> int:
    """The demo; SIGINT, SIGTERM and SIGHUP stop it, and the master and workers it started."""
    with stop_signals_raise():
        try:
            return _run_demo(directory.resolve(), once, spec_template, use_docker)
        except Stopped as stop:
            print(f"stopped   by {signal.Signals(stop.signum).name}: the master and workers are stopped",
                  file=sys.stderr)
            return 128 + stop.signum


def _run_demo(directory: Path, once: bool, spec_template: Path, use_docker: bool) -> int:
    spec = load_spec(spec_template)
    image = container_image(use_docker)
    platforms, skipped = container_platforms(spec) if image else buildable_platforms(spec)
    for name, reasons in skipped.items():
        print(f"skipped   {name}: this host cannot build it:")
        for reason in reasons:
            print(f"            {reason}")
    if not platforms:
        raise VelofarmError("this host can build none of the platforms; run the fixes above and try again")
    prepare_dir(directory)
    # Each platform is built twice and published only if both archives are byte-identical.
    farm = write_farm(directory, spec_template, platforms, release={"reproduce": 2}, docker_image=image)
    farm.init_repo()
    print(f"keys      {farm.root / 'keys'} (private halves in {farm.secrets.directory}, mode 0600)")
    print(f"building  {', '.join(platforms)} in {directory}")
    master = MasterPoller(farm.url, farm.master_dir / "twistd.log")
    try:
        farm.start_all()
        print(f"web UI    {farm.url}", flush=True)
        started = time.monotonic()
        farm.push_tag(TAG)
        print(f"pushed    {TAG} to {farm.remote}", flush=True)
        release = watch(master, platforms, started)
        status = report(master, farm, platforms, release, time.monotonic() - started)
        if once:
            return status
        print(f"\nThe master keeps running: {farm.url} (Ctrl-C stops it)", flush=True)
        while True:
            time.sleep(3600)
    finally:
        with signals_ignored():  # a second Ctrl-C must not cut the clean-up short
            farm.stop_all()


# -- stopping ---------------------------------------------------------------------------------

class Stopped(BaseException):
    """A stop signal arrived; a BaseException so no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


STOP_SIGNALS = [s for s in (getattr(signal, n, None) for n in ("SIGINT", "SIGTERM", "SIGHUP")) if s is not None]


@contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Each stop signal raises Stopped in the main thread, so `finally` stops what was started."""
    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)
    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def signals_ignored() -> Iterator[None]:
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


# -- watching ---------------------------------------------------------------------------------

class MasterPoller:
    """Reads the master's REST API; a failed poll (reset, cut answer, 5xx) is retried, and only a
    master that stays unreachable for `give_up_after` seconds ends the demo."""

    def __init__(self, url: str, log: Path, give_up_after: float = UNREACHABLE_AFTER,
                 retry_every: float = 1.0, timeout: float = 10.0) -> None:
        self.url, self.log = url, log
        self.give_up_after, self.retry_every, self.timeout = give_up_after, retry_every, timeout

    def get(self, path: str) -> Any:
        failing_since: float | None = None
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}api/v2/{path}", timeout=self.timeout) as resp:
                    return json.load(resp)
            except urllib.error.HTTPError as exc:
                exc.close()
                if exc.code < 500:
                    raise VelofarmError(f"the master at {self.url} answered {exc.code} to api/v2/{path}; "
                                        f"see {self.log}") from None
                error: Exception = exc
            except TRANSIENT as exc:
                error = exc
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since >= self.give_up_after:
                raise VelofarmError(f"the master at {self.url} has not answered for {self.give_up_after:.0f} s "
                                    f"(last: {error!r}); the demo stops; see {self.log}") from None
            time.sleep(self.retry_every)


def _latest(master: MasterPoller, builder: str) -> dict[str, Any] | None:
    builds = master.get(f"builders/{builder}/builds?order=-number&limit=1")["builds"]
    return builds[0] if builds else None


def watch(master: MasterPoller, platforms: list[str], started: float) -> dict[str, Any]:
    """Print each platform's current step as it changes, until the release build ends."""
    shown: dict[str, str] = {}
    # reproduce = 2: each platform's second build runs on build-<platform>-again
    shown_builders = [(name, f"build-{name}") for name in platforms] + \
                     [(f"{name} (again)", f"build-{name}-again") for name in platforms]
    while True:
        for name, builder in shown_builders:
            build = _latest(master, builder)
            if build is None:
                continue
            state = build["state_string"]
            if not build["complete"]:
                running = [st["name"] for st in master.get(f"builds/{build['buildid']}/steps")["steps"]
                           if st["started_at"] and not st["complete"]]
                state = running[0] if running else state
            if shown.get(name) != state:
                shown[name] = state
                print(f"{time.monotonic() - started:6.1f}s  {name:<28} {state}", flush=True)
        release = _latest(master, "release")
        if release and release["complete"]:
            return release
        time.sleep(0.3)


def report(master: MasterPoller, farm: LocalFarm, platforms: list[str], release: dict[str, Any],
           elapsed: float) -> int:
    folder = farm.root / "releases" / TAG
    if release["results"] != 0 or not folder.exists():
        print(f"\nFAILED    {TAG}: {release['state_string']} (see {farm.url}#/builders)", file=sys.stderr)
        return 1
    problems = verify_release(folder, load_trusted_keys(farm.root / "keys"))
    meta = json.loads((folder / "release.json").read_text())
    print(f"\nreleased  {TAG} in {elapsed:.1f} s: {folder}")
    for entry in meta["platforms"]:
        build = _latest(master, f"build-{entry['name']}") or {}
        took = (build.get("complete_at") or 0) - (build.get("started_at") or 0)
        print(f"  {entry['name']:<20} {entry['archive']:<52} {entry['size'] / 1048576:6.2f} MiB  "
              f"{entry['sha256'][:16]}  built in {took:.0f} s"
              + (f" in image {entry['builder_image_digest'][7:19]}" if "builder_image_digest" in entry else ""))
    agreed = meta.get("reproduced", {}).get("platforms", {})
    if agreed:
        print(f"reproduced {sum(len(a['agreed']) > 1 for a in agreed.values())} of {len(agreed)} platforms: "
              + ", ".join(f"{name} (builds {' = '.join(map(str, a['agreed']))})" for name, a in sorted(agreed.items())))
    for problem in problems:
        print(f"  FAIL {problem}", file=sys.stderr)
    print(f"verified  every checksum, both signatures of SHA256SUMS, the provenance and the SBOM against "
          f"{farm.root / 'keys'}" if not problems else "NOT verified")
    if not problems:
        print(f"          by hand: minisign -Vm {folder}/SHA256SUMS -p {farm.root}/keys/minisign.pub")
    return 1 if problems else 0
