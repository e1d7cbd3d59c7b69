"""Steps that run in the master: thin wrappers that call the core."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from buildbot.process.buildstep import BuildStep
from buildbot.process.results import FAILURE, SUCCESS, statusToString
from buildbot.steps.trigger import Trigger
from buildbot.reporters.utils import getURLForBuild
from twisted.internet import defer, threads

from velofarm.artifacts import commit_incoming
from velofarm.errors import VelofarmError


class CommitArtifacts(BuildStep):
    """Checks what the worker uploaded and moves it into the artifact store in one rename."""

    renderables = ["archive"]

    def __init__(self, artifacts_root: str, platform: str, archive: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.artifacts_root = artifacts_root
        self.platform = platform
        self.archive = archive

    @defer.inlineCallbacks
    def run(self) -> Any:
        log = yield self.addLog("stdio")
        tag = self.getProperty("tag")
        try:
            final = yield threads.deferToThread(commit_incoming, Path(self.artifacts_root), tag, self.platform,
                                                self.build.number, self.archive)
        except VelofarmError as exc:
            yield log.addStderr(f"error: {exc}\n")
            self.descriptionDone = ["artifact rejected"]
            return FAILURE
        yield log.addStdout(f"stored {final}\n")
        self.setProperty("artifact", str(final), "CommitArtifacts")
        return SUCCESS


class ReleaseTrigger(Trigger):
    """Triggers every platform build; when any fails, names the platform and links its build."""

    @defer.inlineCallbacks
    def run(self) -> Any:
        results = yield super().run()
        failed = []
        for brid in self.brids:
            builds = yield self.master.db.builds.getBuilds(buildrequestid=brid)
            if not builds:
                continue
            build = builds[-1]  # a retried request has several builds; the last one counts
            if build.results not in (SUCCESS, None):
                builder = yield self.master.data.get(("builders", build.builderid))
                url = getURLForBuild(self.master, build.builderid, build.number)
                failed.append(f"{builder['name']} #{build.number} {statusToString(build.results)}: {url}")
        if failed:
            yield self.addCompleteLog("failed platforms", "\n".join(failed) + "\n")
            names = ", ".join(f.split(" #")[0].removeprefix("build-") for f in failed)
            self.descriptionDone = [f"platform failed: {names}"]
            self.failed_summary = f"platform failed: {names}; nothing published"
        return results

    def getResultSummary(self) -> dict[str, str]:
        summary = getattr(self, "failed_summary", None)
        return {"step": summary} if summary else super().getResultSummary()
