"""The master's own view of the tagged source: the commit time and Cargo.lock, read with git.

Provenance and the SBOM must not rest on what a worker says about the source, so the master
fetches the tag itself (shallow, into a cache folder) and checks it is the resolved commit.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from velofarm.errors import ReleaseError


@dataclass(frozen=True)
class SourceFacts:
    commit: str
    commit_time: int  # seconds since the epoch: SOURCE_DATE_EPOCH and the signatures' time
    cargo_lock: bytes


def _git(cache: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "--git-dir", str(cache), *args], capture_output=True, timeout=600)


def read_source(repo_url: str, tag: str, commit: str, manifest: str, cache: Path) -> SourceFacts:
    """Fetch refs/tags/TAG from the repository; ReleaseError when it is not `commit` or lacks Cargo.lock."""
    if not (cache / "HEAD").exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "--bare", str(cache)], check=True, capture_output=True)
    fetched = _git(cache, "fetch", "-q", "--no-tags", "--depth", "1", "--force", repo_url,
                   f"+refs/tags/{tag}:refs/tags/{tag}")
    if fetched.returncode != 0:
        raise ReleaseError(f"tag {tag}: the master cannot fetch it from {repo_url}: "
                           f"{fetched.stderr.decode(errors='replace').strip()[:300]}")
    peeled = _git(cache, "rev-parse", f"refs/tags/{tag}^{{commit}}").stdout.decode().strip()
    if peeled != commit:
        raise ReleaseError(f"tag {tag}: now points to {peeled}, but this release built {commit}; the tag was "
                           "moved during the release: release it again")
    epoch = _git(cache, "show", "-s", "--format=%ct", commit).stdout.decode().strip()
    lock_path = str(PurePosixPath(manifest).parent / "Cargo.lock").removeprefix("./")
    lock = _git(cache, "show", f"{commit}:{lock_path}")
    if lock.returncode != 0:
        raise ReleaseError(f"tag {tag}: {lock_path} is not committed at {commit[:12]}; builds use --locked, "
                           "so commit Cargo.lock and tag again")
    return SourceFacts(commit=commit, commit_time=int(epoch), cargo_lock=lock.stdout)
