"""Reading a running farm in tests: builds, steps and logs through the REST API."""

from __future__ import annotations

import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

from velofarm.cli.localfarm import LocalFarm


def release_builds(farm: LocalFarm) -> list[dict[str, Any]]:
    return list(farm.api("builders/release/builds?property=tag&property=dry_run&order=number")["builds"])


def tags_released(farm: LocalFarm) -> list[str]:
    return [b["properties"]["tag"][0] for b in release_builds(farm) if "tag" in b["properties"]]


def wait_release_of(farm: LocalFarm, tag: str, timeout: float = 600) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = [b for b in release_builds(farm) if b["properties"].get("tag", [None])[0] == tag]
        return found[-1] if found and found[-1]["complete"] else None
    return dict(farm.wait(done, timeout, f"the release of {tag}", every=0.5))


def steps(farm: LocalFarm, buildid: int) -> list[dict[str, Any]]:
    return list(farm.api(f"builds/{buildid}/steps")["steps"])


def step_log(farm: LocalFarm, buildid: int, step_name: str) -> str:
    step = next(s for s in steps(farm, buildid) if s["name"] == step_name)
    text = []
    for log in farm.api(f"steps/{step['stepid']}/logs")["logs"]:
        chunks = farm.api(f"logs/{log['logid']}/contents")["logchunks"]
        text.append("".join(c["content"] for c in chunks))
    return "\n".join(text)


def all_step_logs(farm: LocalFarm) -> str:
    text = []
    for build in farm.api("builds")["builds"]:
        for step in steps(farm, build["buildid"]):
            for log in farm.api(f"steps/{step['stepid']}/logs")["logs"]:
                chunks = farm.api(f"logs/{log['logid']}/contents")["logchunks"]
                text.append("".join(c["content"] for c in chunks))
    return "\n".join(text)


def quiet_for(farm: LocalFarm, seconds: float) -> int:
    """Wait `seconds` and return how many release builds exist (nothing should have started)."""
    time.sleep(seconds)
    return len(release_builds(farm))


def archive_names(path: Path) -> list[str]:
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    with tarfile.open(path) as tf:
        return tf.getnames()
