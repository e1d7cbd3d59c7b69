"""The local push path: a git post-receive hook hands pushed tags to the master (PB change source)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

ZERO = "0" * 40


def pushed_tags(lines: IO[str]) -> list[tuple[str, str]]:
    """(ref, new sha) for each created or moved tag in post-receive input; deletions are skipped."""
    result = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("refs/tags/") and parts[1].strip("0"):
            result.append((parts[2], parts[1]))
    return result


def send_tag_changes(master: str, password_file: Path, repository: str, lines: IO[str]) -> int:
    """Send one change per pushed tag; returns a process exit status."""
    from buildbot.clients.sendchange import Sender
    from twisted.internet import defer, task

    from velofarm.buildmaster.changes import CHANGE_USER

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


HOOK = """#!/bin/sh
# velofarm: tell the master about pushed tags (written by velofarm; see velofarm/notify.py).
exec {python} -m velofarm.cli notify --master {master} --password-file {password_file} --repository {repository}
"""


def install_hook(bare_repo: Path, python: str, master: str, password_file: Path, repository: str) -> Path:
    """Write the bare repository's post-receive hook."""
    hook = bare_repo / "hooks" / "post-receive"
    hook.write_text(HOOK.format(python=python, master=master, password_file=password_file,
                                repository=repository), encoding="utf-8")
    hook.chmod(0o755)
    return hook
