"""The job a worker tool reads (velofarm.spec.job writes it on the master), as tests build it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def make_job(binaries: list[dict[str, Any]] | None = None, **platform: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "linux-x86_64", "target": "x86_64-unknown-linux-gnu", "os": "linux",
        "method": "cargo", "archive": "tar.gz", "exe_suffix": "", "python": "python3",
        "cargo": "cargo", "env": {}, "rustflags": [], "linker": None, "runner": [],
        "size_limit_bytes": 30 << 20, "fix_target": "rustup target add x86_64-unknown-linux-gnu",
        "fix_linker": "", "fix_runner": "", "fix_cross": "", "fix_docker": ""}
    return {"format": 1, "project": "velostream", "manifest": "Cargo.toml", "needs_protoc": False,
            "ship": ["README.md"], "binaries": binaries or [{"name": "velo-sql", "smoke": ["--version"]}],
            "platform": {**base, **platform}}


def write_job(path: Path, job: dict[str, Any]) -> str:
    path.write_text(json.dumps(job))
    return str(path)
