"""What the master recorded about one release's platform builds (written by buildmaster/records.py).

The file is JSON the coordinator writes from Buildbot's database before assembly:
  {"format": 1, "builder_id": URL, "release": {"url", "started_on"},
   "platforms": {NAME: [{"url", "worker", "started_on", "finished_on", "got_revision",
                         "rustc", "builder_image_digest"}, ...]}}
A platform lists every build of this release that produced its archive (one today; a
reproducibility check adds more), so provenance can name each of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velofarm.errors import ReleaseError
from velofarm.release.provenance import PlatformBuild


@dataclass(frozen=True)
class BuildRecords:
    builder_id: str
    release_url: str
    started_on: str
    builds: dict[str, list[PlatformBuild]]
    raw: dict[str, Any]  # for fields later parts add (e.g. reproduced) without a format change


def load_build_records(path: Path, platforms: list[str], commit: str) -> BuildRecords:
    """The records, checked: every platform has a build, and every build is of `commit`."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        builds = {name: [_build(name, entry) for entry in data["platforms"].get(name, [])] for name in platforms}
        got = {name: [entry.get("got_revision") for entry in data["platforms"].get(name, [])] for name in platforms}
        release = data["release"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReleaseError(f"{path}: not the coordinator's build records ({exc}); run the release build again") from None
    for name in platforms:
        if not builds[name]:
            raise ReleaseError(f"{path}: no build of platform {name} is recorded for this release; rebuild it")
        for build, revision in zip(builds[name], got[name], strict=True):
            if revision != commit:
                raise ReleaseError(f"platform {name}: build {build.url} checked out {revision}, but the release is "
                                   f"{commit}; release the tag again")
    return BuildRecords(builder_id=str(data["builder_id"]), release_url=str(release["url"]),
                        started_on=str(release["started_on"]), builds=builds, raw=data)


def _build(platform: str, entry: dict[str, Any]) -> PlatformBuild:
    return PlatformBuild(platform=platform, url=str(entry["url"]), worker=str(entry["worker"]),
                         started_on=str(entry["started_on"]), finished_on=str(entry["finished_on"]),
                         rustc=str(entry.get("rustc") or ""),
                         builder_image_digest=str(entry.get("builder_image_digest") or ""))


def rustc_from_toolchain_log(log: str) -> str:
    """The `rustc -vV` block the worker's toolchain step printed (lines 'rustc -vV: ...')."""
    return "\n".join(line.split("rustc -vV: ", 1)[1] for line in log.splitlines() if "rustc -vV: " in line)
