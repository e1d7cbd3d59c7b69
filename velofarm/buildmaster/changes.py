"""Where tags come from: a git poller, the local push hook (PB), and signed webhooks (www)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from buildbot.plugins import changes

from velofarm.spec import Spec

CHANGE_USER = "velofarm-changes"


def change_sources(spec: Spec, change_password: str | None, poller_dir: Path) -> list[Any]:
    result: list[Any] = []
    if change_password:
        result.append(changes.PBChangeSource(user=CHANGE_USER, passwd=change_password))
    if spec.master.poll_interval > 0:
        result.append(changes.GitPoller(
            repourl=spec.repo_url, only_tags=True, pollInterval=spec.master.poll_interval,
            pollAtLaunch=True, buildPushesWithNoCommits=True, workdir=str(poller_dir), category="tag"))
    return result
