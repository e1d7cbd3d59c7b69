"""Local farms on velofarm's own master config for the benchmarks, and their event timelines.

A farm (velofarm.cli.localfarm: master, real worker processes or Docker latent workers, a git
remote whose hook notifies the master) runs velofarm's master.cfg plus `bench_extras`: a service
that timestamps Buildbot's own events to the millisecond (the REST API keeps whole seconds), open
authz, a force scheduler that rebuilds one platform alone, and a worker choice that honours a
`bench_worker` property (only forced bench builds set it; every other build gets Buildbot's own
random choice, as without it).
"""

from __future__ import annotations

import os
import random
import time
import tomllib
from pathlib import Path
from subprocess import Popen
from typing import Any

from bench.events import EventRecorder, read_events
from bench.procs import Procs, api, connected_workers, start_master, start_worker, wait_for
from velofarm.cli.localfarm import LocalFarm, git, write_farm
from velofarm.cli.masterdir import create_master
from velofarm.spec import tomlwrite

REPO = Path(__file__).resolve().parent.parent
REBUILT = "linux-x86_64"
MASTER_CFG = '''from velofarm.buildmaster.config import load_master_config
from bench.farms import bench_extras
BuildmasterConfig = load_master_config(basedir, {spec!r})  # noqa: F821 (Buildbot provides basedir)
bench_extras(BuildmasterConfig, basedir)  # noqa: F821
'''


def pinned_or_random(builder: Any, workers: list[Any], request: Any) -> Any:
    wanted = request.properties.getProperty("bench_worker") if request is not None else None
    if wanted:
        return next((w for w in workers if w.worker.workername == wanted), None)
    return random.choice(workers) if workers else None


def bench_extras(c: dict[str, Any], basedir: str) -> None:
    """Called from a bench farm's master.cfg (the bench drives it through the REST API without
    signing in, hence the open authz)."""
    from buildbot.plugins import schedulers, util
    c["services"].append(EventRecorder(path=os.path.join(basedir, "events.jsonl")))
    c["www"].pop("auth", None)
    c["www"]["authz"] = util.Authz()
    c["select_next_worker"] = pinned_or_random  # builders with their own nextWorker keep theirs
    c["schedulers"].append(schedulers.ForceScheduler(
        name="bench-rebuild", builderNames=[f"build-{REBUILT}"],
        properties=[util.StringParameter(name=n) for n in ("tag", "tag_commit", "bench_worker")]))


def new_farm(root: Path, platforms: list[str], workers_per_platform: int = 1, reproduce: int = 1,
             docker_image: str | None = None, worker_prefix: str = "") -> LocalFarm:
    """farm.toml, the example's repository and the master folder; nothing started yet.

    `worker_prefix` renames Docker workers (their cache volumes are named after them), so a bench
    farm never shares a volume with a test farm running on the same engine.
    """
    farm = write_farm(root, REPO / "farm.toml", platforms, workers_per_platform=workers_per_platform,
                      release={"reproduce": reproduce}, docker_image=docker_image)
    if worker_prefix and farm.docker_workers:
        data = tomllib.loads(farm.spec_path.read_text(encoding="utf-8"))
        renamed = {f"{worker_prefix}-{name}": body for name, body in data["workers"].items()}
        data["workers"] = renamed
        farm.spec_path.write_text(tomlwrite.dumps(data), encoding="utf-8")
        farm.docker_workers = {f"{worker_prefix}-{n}": p for n, p in farm.docker_workers.items()}
    farm.init_repo()
    create_master(farm.master_dir, farm.spec_path)
    (farm.master_dir / "master.cfg").write_text(MASTER_CFG.format(spec=str(farm.spec_path)), encoding="utf-8")
    return farm


def start_farm(farm: LocalFarm, procs: Procs) -> Popen[bytes]:
    """The master and every worker process, each given its builders; the master's process."""
    master = start_master(procs, farm.master_dir, farm.www_port, timeout=180)
    for name in farm.workers:
        farm.create_worker(name)
        start_worker(procs, farm.worker_dir(name))
    wait_for(lambda: connected_workers(farm.www_port) >= set(farm.workers), 240, "the farm's workers")
    wait_for(lambda: all(farm.worker_attached(n) for n in farm.workers), 120, "the workers' builders")
    return master


def bump(farm: LocalFarm, tag: str) -> str:
    """Commit the tag's version (Cargo.toml and Cargo.lock) and tag it, locally: pushing the tag
    is what starts the release. Returns the tagged commit."""
    farm.set_version(tag.removeprefix("v"))
    git("tag", tag, cwd=farm.src)
    return git("rev-parse", "HEAD", cwd=farm.src)


def push_tags(farm: LocalFarm, *tags: str) -> float:
    """Push tags in one push (the remote's hook tells the master); the time of the push."""
    pushed = time.time()
    git("push", "-q", "origin", *tags, cwd=farm.src)
    return pushed


def wait_releases(farm: LocalFarm, tags: list[str], since: float, timeout: float) -> dict[str, dict[str, Any]]:
    """Each tag's finished release build, however it ended. Waits by reading the event file, not
    by polling the master, whose CPU and memory are part of what is measured."""
    release_id = api(farm.www_port, "builders/release")["builders"][0]["builderid"]
    events = str(farm.master_dir / "events.jsonl")

    def finished() -> bool:
        return sum(1 for e in read_events(events) if e["key"][0] == "builds" and e["key"][-1] == "finished"
                   and e.get("builderid") == release_id and e["t"] >= since) >= len(tags)
    wait_for(finished, timeout, f"the release of {', '.join(tags)}", every=0.2)
    found = api(farm.www_port, "builders/release/builds?property=tag") or {"builds": []}
    return {b["properties"]["tag"][0]: b for b in found["builds"]
            if b["complete"] and b["properties"].get("tag", [None])[0] in tags}


def release_of(farm: LocalFarm, tag: str, since: float = 0.0, timeout: float = 600) -> dict[str, Any]:
    """The finished release build of a tag; a failed one stops the bench, naming the log."""
    build = wait_releases(farm, [tag], since, timeout).get(tag)
    if build is None:
        raise RuntimeError(f"no finished release build of {tag}; see {farm.master_dir}/twistd.log")
    if build["results"] != 0:
        raise RuntimeError(f"the bench release of {tag} failed: {build['state_string']}; "
                           f"see {farm.master_dir}/twistd.log")
    return build


def builds_of_tag(farm: LocalFarm, builder: str, tag: str) -> list[dict[str, Any]]:
    found = api(farm.www_port, f"builders/{builder}/builds?property=tag&property=workername") or {"builds": []}
    return [b for b in found["builds"] if b["properties"].get("tag", [None])[0] == tag]


class Timeline:
    """Event times of one farm (bench.events), addressed by build and step name."""

    def __init__(self, farm: LocalFarm) -> None:
        self.events = read_events(str(farm.master_dir / "events.jsonl"))

    def first(self, key0: str, event: str, **match: Any) -> float:
        for e in self.events:
            if e["key"][0] == key0 and e["key"][-1] == event and all(e.get(k) == v for k, v in match.items()):
                return float(e["t"])
        raise KeyError(f"no {key0} {event} event matching {match}")

    def build_span(self, buildid: int) -> tuple[float, float]:
        return self.first("builds", "new", buildid=buildid), self.first("builds", "finished", buildid=buildid)

    def steps(self, buildid: int) -> list[tuple[str, float, float]]:
        """(name, started, finished) of every step of a build that ran, in order."""
        started = {e["stepid"]: (e["name"], float(e["t"])) for e in self.events
                   if e["key"][0] == "steps" and e["key"][-1] == "started" and e.get("buildid") == buildid}
        ended = {e["stepid"]: float(e["t"]) for e in self.events
                 if e["key"][0] == "steps" and e["key"][-1] == "finished" and e.get("buildid") == buildid}
        return sorted(((name, t0, ended.get(sid, t0)) for sid, (name, t0) in started.items()), key=lambda s: s[1])

    def step(self, buildid: int, name: str) -> tuple[float, float] | None:
        """The first step of a build whose name contains `name`, or None (step names may change)."""
        return next(((t0, t1) for n, t0, t1 in self.steps(buildid) if name in n), None)
