"""Read tags of a git repository (core: plain git, no Buildbot)."""

from __future__ import annotations

import subprocess

from velofarm.errors import VelofarmError


def tag_commit(repo_url: str, tag: str) -> str | None:
    """The commit a tag points to (peeled for annotated tags), or None when it does not exist."""
    out = subprocess.run(["git", "ls-remote", "--tags", repo_url, f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}"],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise VelofarmError(f"cannot read the tags of {repo_url}: {out.stderr.strip()[:300]}")
    refs = {}
    for line in out.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        refs[ref] = sha
    return refs.get(f"refs/tags/{tag}^{{}}") or refs.get(f"refs/tags/{tag}")
