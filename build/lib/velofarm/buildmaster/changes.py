"""Where tags come from: a git poller, the local push hook (PB), and signed webhooks (www)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from buildbot.plugins import changes
from twisted.internet import defer

from velofarm.spec.farm import Spec
from velofarm.tags.notify import CHANGE_USER


class TagPoller(changes.GitPoller):
    """GitPoller that also reports the first tag of a repository that had none.

    Buildbot's poller treats "no known refs" as its first run and reports nothing, so in a
    repository without tags the first release tag would be skipped. This one remembers that it
    has polled before, and then reports a tag even when it is the only one.
    """

    @defer.inlineCallbacks
    def poll(self) -> Any:
        yield super().poll()
        if not getattr(self, "_velofarm_polled", False):
            self._velofarm_polled = True
            yield self.setState("velofarm_polled", True)

    @defer.inlineCallbacks
    def _process_changes(self, newRev: str, branch: str) -> Any:
        if not self.lastRev and (yield self.getState("velofarm_polled", False)):
            # Any known revision makes the parent compare instead of skipping; with
            # buildPushesWithNoCommits it then reports the tag on its (already seen) commit.
            self.lastRev = {"refs/velofarm/polled": newRev}
        yield super()._process_changes(newRev, branch)


def change_sources(spec: Spec, change_password: str | None, poller_dir: Path) -> list[Any]:
    result: list[Any] = []
    if change_password:
        result.append(changes.PBChangeSource(user=CHANGE_USER, passwd=change_password))
    if spec.master.poll_interval > 0:
        result.append(TagPoller(
            repourl=spec.repo_url, only_tags=True, pollInterval=spec.master.poll_interval,
            pollAtLaunch=True, buildPushesWithNoCommits=True, workdir=str(poller_dir), category="tag"))
    return result
