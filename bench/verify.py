"""The release step's SHA-256 work against hashlib's single-stream speed (and sha256sum's).

Two platforms' archives of ARCHIVE_MIB each sit in an artifact store, as the farm leaves them.
velofarm: what the coordinator's "verify and assemble" step runs (`python -m velofarm.release.assemble`:
assemble_release, one SHA-256 pass per archive), timed in-process, as archive bytes per second.
Baseline: one hashlib.sha256 pass over the same files, 1 MiB reads. All from the page cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from velofarm.cli.localfarm import write_farm
from velofarm.release.assemble import assemble_release
from velofarm.spec.farm import load_spec
from velofarm.spec.job import archive_name

REPO = Path(__file__).resolve().parent.parent
PLATFORMS = ["linux-x86_64", "windows-x86_64-gnu"]
TAG = "v1.0.0"
ARCHIVE_MIB = 256
MIB = 1024 * 1024


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


def _best(fn: Any, reps: int = 3) -> float:
    return min(fn() for _ in range(reps))


def measure(root: Path, emit: Any) -> dict[str, Any]:
    farm = write_farm(root / "verify-farm", REPO / "farm.toml", PLATFORMS)
    spec = load_spec(farm.spec_path)
    store = root / "verify-artifacts"
    paths = []
    for name in PLATFORMS:
        folder = store / TAG / name
        folder.mkdir(parents=True)
        paths.append(folder / archive_name(spec.project.name, TAG, spec.platforms[name]))
        _write_archive(paths[-1])
    total_mib = ARCHIVE_MIB * len(paths)
    hashlib_s = _best(lambda: _hashlib_pass(paths))
    sha256sum_s = _best(lambda: _timed(["sha256sum", *map(str, paths)]))
    runs = []
    for i in range(2):
        out = root / f"verify-release-{i}"
        start = time.perf_counter()
        assemble_release(spec, TAG, "0" * 40, store, out)
        runs.append(time.perf_counter() - start)
    release_s = min(runs)
    emit(f"  {total_mib} MiB of archives: release step {total_mib / release_s:.0f} MiB/s, "
         f"hashlib {total_mib / hashlib_s:.0f} MiB/s, sha256sum {total_mib / sha256sum_s:.0f} MiB/s")
    return {"mib": total_mib, "release_mibs": total_mib / release_s, "hashlib_mibs": total_mib / hashlib_s,
            "sha256sum_mibs": total_mib / sha256sum_s}


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start
