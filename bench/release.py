"""Tag to release on the real velofarm config, and warm vs cold rebuilds of one platform.

A local farm (velofarm.cli.localfarm: master, one real worker a host platform, a git remote whose
hook notifies the master) releases the example project. The master's config is velofarm's own,
plus two bench-only additions: EventRecorder (millisecond event times) and a force scheduler to
rebuild one platform alone. Baseline: the same cargo command run directly, both platforms at once
as the farm runs them, cold like the farm's first build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from bench.events import EventRecorder, read_events
from bench.procs import Procs, api, connected_workers, force, start_master, start_worker, wait_build, wait_for
from velofarm.cli.localfarm import LocalFarm, git, write_farm
from velofarm.cli.masterdir import create_master
from velofarm.spec.farm import load_spec
from velofarm.spec.job import archive_name, build_argv
from velofarm.worker_tools import preflight

REPO = Path(__file__).resolve().parent.parent
PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu"]
REBUILT = "linux-x86_64"
TAG = "v0.1.0"
MASTER_CFG = '''from velofarm.buildmaster.config import load_master_config
from bench.release import bench_extras
BuildmasterConfig = load_master_config(basedir, {spec!r})  # noqa: F821 (Buildbot provides basedir)
bench_extras(BuildmasterConfig, basedir)  # noqa: F821
'''


def bench_extras(c: dict[str, Any], basedir: str) -> None:
    """Called from the bench farm's master.cfg: observe events; rebuild one platform on demand
    (the bench drives it through the REST API without signing in, hence the open authz)."""
    from buildbot.plugins import schedulers, util
    c["services"].append(EventRecorder(path=os.path.join(basedir, "events.jsonl")))
    c["www"].pop("auth", None)
    c["www"]["authz"] = util.Authz()
    c["schedulers"].append(schedulers.ForceScheduler(
        name="bench-rebuild", builderNames=[f"build-{REBUILT}"],
        properties=[util.StringParameter(name="tag"), util.StringParameter(name="tag_commit")]))


def direct_builds(farm: LocalFarm, root: Path) -> dict[str, float]:
    """Each platform's cargo command run directly on the tag, all at once, cold: wall seconds."""
    spec = load_spec(farm.spec_path)
    times: dict[str, float] = {}

    def one(name: str) -> None:
        work = root / "direct" / name
        git("clone", "-q", "--branch", TAG, str(farm.src), str(work / "src"))
        epoch = int(git("log", "-1", "--format=%ct", cwd=work / "src"))
        platform = spec.platforms[name].to_json()
        env = {**os.environ, **preflight.build_env(platform, work / "src", epoch),
               "CARGO_TARGET_DIR": str(work / "target"), "CARGO_TERM_COLOR": "never"}
        start = time.monotonic()
        subprocess.run(build_argv(platform), cwd=work / "src", env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[name] = time.monotonic() - start

    threads = [threading.Thread(target=one, args=(name,)) for name in PLATFORMS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(times) != len(PLATFORMS):
        raise RuntimeError("a direct cargo build failed; run it by hand in the bench folder to see why")
    return times


def start_farm(root: Path, procs: Procs) -> LocalFarm:
    farm = write_farm(root / "farm", REPO / "farm.toml", PLATFORMS)
    farm.init_repo()
    git("tag", TAG, cwd=farm.src)  # local only: pushing it is what starts the release
    create_master(farm.master_dir, farm.spec_path)
    (farm.master_dir / "master.cfg").write_text(MASTER_CFG.format(spec=str(farm.spec_path)), encoding="utf-8")
    start_master(procs, farm.master_dir, farm.www_port)
    for name in farm.workers:
        farm.create_worker(name)
        start_worker(procs, farm.worker_dir(name))
    wait_for(lambda: connected_workers(farm.www_port) >= set(farm.workers), 120, "the farm's workers")
    return farm


class Timeline:
    """Event times of one farm, addressed by builder and step name."""

    def __init__(self, farm: LocalFarm) -> None:
        builders = api(farm.www_port, "builders")["builders"]
        self.builder_of = {b["builderid"]: b["name"] for b in builders}
        self.events = read_events(str(farm.master_dir / "events.jsonl"))
        self.build_builder: dict[int, str] = {}
        for e in self.events:
            if e["key"][0] == "builds" and "builderid" in e:
                self.build_builder[e["buildid"]] = self.builder_of.get(e["builderid"], "?")

    def first(self, key0: str, event: str, **match: Any) -> float:
        for e in self.events:
            if e["key"][0] == key0 and e["key"][-1] == event and all(e.get(k) == v for k, v in match.items()):
                return float(e["t"])
        raise KeyError(f"no {key0} {event} event matching {match}")

    def builds(self, builder: str) -> list[int]:
        return sorted({b for b, name in self.build_builder.items() if name == builder})

    def build_span(self, buildid: int) -> tuple[float, float]:
        return self.first("builds", "new", buildid=buildid), self.first("builds", "finished", buildid=buildid)

    def step(self, buildid: int, name: str) -> tuple[float, float]:
        return (self.first("steps", "started", buildid=buildid, name=name),
                self.first("steps", "finished", buildid=buildid, name=name))


def breakdown(tl: Timeline, pushed: float) -> dict[str, Any]:
    """Seconds from the tag push to each phase of the release (see BENCHMARKS.md)."""
    release = tl.builds("release")[0]
    r0, r1 = tl.build_span(release)
    out: dict[str, Any] = {"change_at_master": tl.first("changes", "new") - pushed,
                           "release_starts": r0 - pushed}
    platforms = {}
    for name in PLATFORMS:
        bid = tl.builds(f"build-{name}")[0]
        b0, b1 = tl.build_span(bid)
        cargo, store = tl.step(bid, "cargo build"), tl.step(bid, "store artifact")
        checks, pack = (tl.step(bid, "smoke test")[0], tl.step(bid, "size gate")[1]), \
            (tl.step(bid, "stage")[0], tl.step(bid, "archive")[1])
        platforms[name] = {"starts": b0 - pushed, "prepare": cargo[0] - b0, "cargo": cargo[1] - cargo[0],
                           "smoke_and_size": checks[1] - checks[0], "pack": pack[1] - pack[0],
                           "transfer": store[1] - store[0], "ends": b1 - pushed, "build": b1 - b0}
    out["platforms"] = platforms
    trigger, verify, publish = (tl.step(release, n)
                                for n in ("build platforms", "verify and assemble", "publish"))
    out.update({"coordinator_resumes": trigger[1] - max(p["ends"] for p in platforms.values()) - pushed,
                "verify_and_assemble": verify[1] - verify[0], "publish": publish[1] - publish[0],
                "total": r1 - pushed})
    return out


def rebuild(farm: LocalFarm, commit: str) -> tuple[float, float, bytes]:
    """Force one platform's rebuild of the tag: build seconds, cargo step seconds, archive bytes."""
    brid = force(farm.www_port, "bench-rebuild", f"build-{REBUILT}", tag=TAG, tag_commit=commit)
    build = wait_build(farm.www_port, brid, timeout=300)
    timeline = Timeline(farm)
    b0, b1 = timeline.build_span(build["buildid"])
    c0, c1 = timeline.step(build["buildid"], "cargo build")
    return b1 - b0, c1 - c0, stored_archive(farm)


def stored_archive(farm: LocalFarm) -> bytes:
    spec = load_spec(farm.spec_path)
    name = archive_name(spec.project.name, TAG, spec.platforms[REBUILT])
    return (farm.master_dir / "artifacts" / TAG / REBUILT / name).read_bytes()


def measure(root: Path, procs: Procs, emit: Any) -> dict[str, Any]:
    farm = start_farm(root, procs)
    direct = direct_builds(farm, root)
    emit("  direct cargo builds (both at once, cold): "
         + ", ".join(f"{k} {v:.1f} s" for k, v in direct.items()))
    time.sleep(1.0)  # let the machine settle after the direct builds
    pushed = time.time()
    git("push", "-q", "origin", TAG, cwd=farm.src)  # the remote's hook tells the master
    done = farm.wait_release(1, timeout=400)
    if done["results"] != 0:
        raise RuntimeError(f"the bench release failed: {done['state_string']}; "
                           f"see {farm.master_dir}/twistd.log")
    phases = breakdown(Timeline(farm), pushed)
    first = stored_archive(farm)
    commit = git("rev-parse", f"{TAG}^{{commit}}", cwd=farm.src)
    warm, warm_cargo, warm_bytes = rebuild(farm, commit)
    worker = next(n for n in farm.workers if REBUILT in n)
    shutil.rmtree(farm.worker_dir(worker) / ".cargo-target" / REBUILT)
    cold, cold_cargo, cold_bytes = rebuild(farm, commit)
    emit(f"  {REBUILT} rebuild alone: warm {warm:.1f} s (cargo {warm_cargo:.1f} s), "
         f"cold {cold:.1f} s (cargo {cold_cargo:.1f} s)")
    return {"direct": direct, "phases": phases, "warm_s": warm, "cold_s": cold, "warm_cargo_s": warm_cargo,
            "cold_cargo_s": cold_cargo, "identical": first == warm_bytes == cold_bytes}
