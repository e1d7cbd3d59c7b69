"""The master's folder is private: its database holds Buildbot's session signing key.

Anyone who can read `state.sqlite` can forge a session cookie for any user, so the master runs
with umask 077 and every path it wrote under an older, looser umask is made owner-only on the
next start (and said so in the log).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MASTER_UMASK = 0o077


def make_private(basedir: Path) -> list[str]:
    """Set umask 077 for this process and drop group/other bits under `basedir`.

    Returns "path mode->mode" for each path changed (empty when all was private already).
    Symbolic links are left alone: they may point outside the folder.
    """
    os.umask(MASTER_UMASK)
    changed: list[str] = []
    if not basedir.is_dir():
        return changed
    for path in [basedir, *basedir.rglob("*")]:
        try:
            info = path.lstat()
        except FileNotFoundError:
            continue  # removed while we walked (a log rotated, an upload finished)
        if stat.S_ISLNK(info.st_mode) or not info.st_mode & 0o077:
            continue
        old = stat.S_IMODE(info.st_mode)
        new = old & 0o700
        os.chmod(path, new)
        changed.append(f"{path.relative_to(basedir) if path != basedir else '.'} {old:o}->{new:o}")
    return changed


def privacy_report(basedir: Path, changed: list[str]) -> str | None:
    """The log line for an existing deployment that was fixed, or None when nothing changed."""
    if not changed:
        return None
    shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
    return (f"velofarm: the master folder {basedir} was readable by other users; made {len(changed)} "
            f"path(s) owner-only (umask 077): {shown}")
