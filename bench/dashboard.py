"""The Releases page for a farm with 500 tags: the time to answer one load, median of 20.

Each tag has a release build and two platform builds (every tenth one failed at a step, with
its log linked), release facts, and archives in an artifact store on disk; the page shows the
newest 50. Measured through the page's Flask app with the build records handed in, as the
master's data fetch hands them over (the fetch's few queries are not included).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path
from typing import Any

from velofarm.buildmaster.dashboard import releases_app
from velofarm.release.dashboard_data import BuildRecord, StepNote
from velofarm.spec.farm import parse_spec

TAGS, LOADS = 500, 20
BUILDERS = {"release": 1, "build-linux-x86_64": 2, "build-windows-x86_64-gnu": 3}
PLATFORMS = {"build-linux-x86_64": "linux-x86_64", "build-windows-x86_64-gnu": "windows-x86_64-gnu"}
FAILED = StepNote(3, "preflight", "missing linker x86_64-w64-mingw32-gcc (failure)", 2, True, log="stdio")


def _records() -> list[BuildRecord]:
    records = []
    for n in range(TAGS):
        tag, start = f"v{n // 100}.{n % 100}.0", 1_700_000_000.0 + n * 600
        failed = n % 10 == 0
        facts = {"changelog": f"## {tag}\n- change {n}", "signatures": ["SHA256SUMS.minisig"], "reproduced": True}
        records.append(BuildRecord("release", 1, n + 1, True, 2 if failed else 0, start, start + 300,
                                   {"tag": tag, "dry_run": False, "release_facts": facts}))
        for builder in PLATFORMS:
            bad = failed and builder.endswith("gnu")
            records.append(BuildRecord(builder, BUILDERS[builder], n + 1, True, 2 if bad else 0, start + 1,
                                       start + 200, {"tag": tag}, FAILED if bad else None))
    return records


def _store(root: Path) -> None:
    for n in range(TAGS):
        for platform in PLATFORMS.values():
            folder = root / f"v{n // 100}.{n % 100}.0" / platform
            folder.mkdir(parents=True)
            name = f"velostream-{folder.parent.name}-{platform}.tar.gz"
            (folder / name).write_bytes(b"archive")
            (folder / f"{name}.sha256").write_text(f"{hashlib.sha256(b'archive').hexdigest()}  {name}\n")


def measure(root: Path, emit: Any) -> dict[str, Any]:
    spec = parse_spec({"project": {"name": "velostream", "title": "Velostream", "git_url": "remote.git",
                                   "binaries": {"velo-sql": ["--version"]}},
                       "platforms": {"linux-x86_64": {}, "windows-x86_64-gnu": {}},
                       "workers": {"box": {"platforms": ["linux-x86_64", "windows-x86_64-gnu"]}}},
                      root / "farm.toml")
    store = root / "artifacts"
    _store(store)
    records = _records()
    client = releases_app(spec, store, fetch=lambda names: (records, 0)).test_client()
    times = []
    for _ in range(LOADS + 1):
        start = time.perf_counter()
        response = client.get("/table")
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200 and b'data-tag="v4.99.0"' in response.data
    median = statistics.median(times[1:])  # the first load compiles the template
    emit(f"  releases page, {TAGS} tags: median {median:.1f} ms of {LOADS} loads (max {max(times[1:]):.1f} ms)")
    return {"median_ms": median, "all_ms": times[1:], "tags": TAGS, "loads": LOADS}


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        print(measure(Path(scratch), print))
