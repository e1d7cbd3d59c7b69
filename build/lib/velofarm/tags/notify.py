"""The local push path: a git post-receive hook hands pushed tags to the master (PB change source)."""

from __future__ import annotations

from pathlib import Path
from typing import IO

ZERO = "0" * 40
# The PB change-source user the hook signs in as (the master and the hook must agree).
CHANGE_USER = "velofarm-changes"


def pushed_tags(lines: IO[str]) -> list[tuple[str, str]]:
    """(ref, new sha) for each created or moved tag in post-receive input; deletions are skipped."""
    result = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[2].startswith("refs/tags/") and parts[1].strip("0"):
            result.append((parts[2], parts[1]))
    return result


HOOK = """#!/bin/sh
# velofarm: tell the master about pushed tags (written by velofarm; see velofarm/tags/notify.py).
exec {python} -m velofarm.cli.main notify --master {master} --password-file {password_file} --repository {repository}
"""


def install_hook(bare_repo: Path, python: str, master: str, password_file: Path, repository: str) -> Path:
    """Write the bare repository's post-receive hook."""
    hook = bare_repo / "hooks" / "post-receive"
    hook.write_text(HOOK.format(python=python, master=master, password_file=password_file,
                                repository=repository), encoding="utf-8")
    hook.chmod(0o755)
    return hook
