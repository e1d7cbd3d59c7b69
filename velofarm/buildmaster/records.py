"""The coordinator's record of its platform builds, from the master's database, for the provenance.

Who built what, when, and with which toolchain is read from Buildbot's own rows (builds, workers,
properties, step logs), never from a file a worker sent. The toolchain is the one caveat: `rustc
-vV` is what the worker's preflight step printed, recorded by the master as that step's output.
The format is described in velofarm/release/records.py.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from buildbot.process.buildstep import BuildStep
from buildbot.process.results import FAILURE, SUCCESS
from buildbot.reporters.utils import getURLForBuild
from twisted.internet import defer

from velofarm.release.records import rustc_from_toolchain_log

BUILD_REQUESTS = "platform_buildrequests"  # set by ReleaseTrigger
TOOLCHAIN_STEP = "preflight"  # its log holds the toolchain check's `rustc -vV:` lines


def rfc3339(when: datetime.datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RecordBuilds(BuildStep):
    """Writes the build records JSON that `python -m velofarm.release.assemble --records` reads."""

    renderables = ["path"]

    def __init__(self, path: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    @defer.inlineCallbacks
    def run(self) -> Any:
        log = yield self.addLog("stdio")
        platforms: dict[str, list[dict[str, Any]]] = {}
        for brid in self.getProperty(BUILD_REQUESTS) or []:
            builds = yield self.master.db.builds.getBuilds(buildrequestid=brid)
            if builds:
                entry = yield self._entry(builds[-1])  # a retried request: the last build made the archive
                platforms.setdefault(entry.pop("platform"), []).append(entry)
        if not platforms:
            yield log.addStderr("error: no platform builds of this release were found\n")
            return FAILURE
        own = yield self.master.db.builds.getBuild(self.build.buildid)
        data = {"format": 1, "builder_id": self.master.config.buildbotURL,
                "release": {"url": getURLForBuild(self.master, own.builderid, own.number),
                            "started_on": rfc3339(own.started_at)},
                "platforms": platforms}
        _write_json(Path(self.path), data)
        for name, entries in sorted(platforms.items()):
            yield log.addStdout(f"{name}: " + ", ".join(f"{e['url']} on {e['worker']}" for e in entries) + "\n")
        return SUCCESS

    @defer.inlineCallbacks
    def _entry(self, build: Any) -> Any:
        props = yield self.master.db.builds.getBuildProperties(build.id)
        worker = yield self.master.db.workers.getWorker(build.workerid) if build.workerid else None
        rustc = yield self._toolchain_output(build.id)
        return {"platform": props.get("platform", ("",))[0], "buildid": build.id, "number": build.number,
                "url": getURLForBuild(self.master, build.builderid, build.number),
                "worker": worker.name if worker else "", "started_on": rfc3339(build.started_at),
                "finished_on": rfc3339(build.complete_at), "results": build.results,
                "got_revision": props.get("got_revision", ("",))[0], "rustc": rustc,
                "builder_image_digest": props.get("builder_image_digest", ("",))[0]}

    @defer.inlineCallbacks
    def _toolchain_output(self, buildid: int) -> Any:
        for step in (yield self.master.db.steps.getSteps(buildid)):
            if step.name != TOOLCHAIN_STEP:
                continue
            for log in (yield self.master.db.logs.getLogs(step.id)):
                if log.name == "stdio" and log.num_lines:
                    text = yield self.master.db.logs.getLogLines(log.id, 0, log.num_lines - 1)
                    return rustc_from_toolchain_log(text)
        return ""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
