"""The release step's SHA-256 work against hashlib's single-stream speed (and sha256sum's).

Two platforms' archives of ARCHIVE_MIB each sit in an artifact store, as the farm leaves them.
velofarm: what the coordinator's "verify and assemble" step runs (`python -m velofarm.release.assemble`:
assemble_release, one SHA-256 pass per archive), timed in-process, as archive bytes per second.
Baseline: one hashlib.sha256 pass over the same files, 1 MiB reads. All from the page cache;
REPS repetitions of each, alternating.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from velofarm.artifacts.store import BuildIdentity, commit_incoming, incoming_dir
from velofarm.cli.localfarm import write_farm
from velofarm.release.assemble import assemble_release
from velofarm.spec.farm import load_spec
from velofarm.spec.job import archive_name

REPO = Path(__file__).resolve().parent.parent
PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu"]
TAG = "v1.0.0"
ARCHIVE_MIB = 256
MIB = 1024 * 1024
REPS = 3


def _write_archive(path: Path) -> None:
    seed = os.urandom(32)
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(ARCHIVE_MIB):
            chunk = hashlib.sha256(seed + i.to_bytes(4, "little")).digest() * (MIB // 32)
            fh.write(chunk)
            digest.update(chunk)
    path.with_name(path.name + ".sha256").write_text(f"{digest.hexdigest()}  {path.name}\n", encoding="utf-8")


def _hashlib_pass(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(MIB):
                digest.update(chunk)
    return time.perf_counter() - start


def measure(root: Path, emit: Any) -> dict[str, Any]:
    farm = write_farm(root / "verify-farm", REPO / "farm.toml", PLATFORMS)
    spec = load_spec(farm.spec_path)
    store = root / "verify-artifacts"
    paths, builds = [], {}
    for build_id, name in enumerate(PLATFORMS, start=1):
        archive = archive_name(spec.project.name, TAG, spec.platforms[name])
        incoming = incoming_dir(store, TAG, name, build_id)
        incoming.mkdir(parents=True)
        _write_archive(incoming / archive)
        record = BuildIdentity(tag=TAG, platform=name, build_id=build_id, build_number=build_id,
                             builder=f"build-{name}", worker="bench", commit="0" * 40, archive=archive)
        paths.append(commit_incoming(store, record))  # as the master stores an upload
        builds[name] = [build_id]
    total_mib = ARCHIVE_MIB * len(paths)
    _hashlib_pass(paths)  # warm-up: every archive in the page cache
    hashlib_s, release_s, sha256sum_s = [], [], []
    for i in range(REPS):  # alternating, so that load drifts hit both alike
        hashlib_s.append(_hashlib_pass(paths))
        out = root / f"verify-release-{i}"
        start = time.perf_counter()
        assemble_release(spec, TAG, "0" * 40, store, out, builds)
        release_s.append(time.perf_counter() - start)
        sha256sum_s.append(_timed(["sha256sum", *map(str, paths)]))
    rate = {name: [total_mib / t for t in times] for name, times in
            (("release", release_s), ("hashlib", hashlib_s), ("sha256sum", sha256sum_s))}
    emit(f"  {total_mib} MiB of archives, median of {REPS}: release step {statistics.median(rate['release']):.0f} "
         f"MiB/s, hashlib {statistics.median(rate['hashlib']):.0f} MiB/s, "
         f"sha256sum {statistics.median(rate['sha256sum']):.0f} MiB/s")
    return {"mib": total_mib, "release_all": rate["release"], "hashlib_all": rate["hashlib"],
            "sha256sum_all": rate["sha256sum"]}


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start
