"""The push hook's client: sends pushed tags to the master's PB change source."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from buildbot.clients.sendchange import Sender
from twisted.internet import defer, task

from velofarm.tags.notify import CHANGE_USER, pushed_tags


def send_tag_changes(master: str, password_file: Path, repository: str, lines: IO[str]) -> int:
    """Send one change per pushed tag; returns a process exit status."""
    tags = pushed_tags(lines)
    if not tags:
        return 0
    password = password_file.read_text(encoding="utf-8").strip()
    sender = Sender(master, auth=(CHANGE_USER, password))

    @defer.inlineCallbacks
    def send_all(_reactor: object) -> object:
        for ref, sha in tags:
            yield sender.send(branch=ref, revision=sha, comments=f"tag {ref} pushed", files=[],
                              who="velofarm-hook", category="tag", repository=repository, vc="git")
            print(f"velofarm: told the master about {ref}")

    try:
        task.react(send_all)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
