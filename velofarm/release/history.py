"""The project's git history, read with plain git: release tags, commits, files at a commit.

Runs wherever notes are made: the master (the release coordinator's `changelog` and `verify and
assemble` steps) and `velofarm plan`. The master keeps one bare mirror per repository URL in a
cache folder and fetches only tags into it (each fetch under a lock), so a release never needs a
work tree and two releases never race on one repository.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from velofarm.errors import ReleaseError

GIT_TIMEOUT = 300  # seconds; a first fetch of a large repository takes a while
HEAD_REF = "refs/velofarm/head"  # where a mirror keeps the remote's HEAD (for plans of untagged HEADs)
_FIELD, _RECORD = "\x1f", "\x1e"


@dataclass(frozen=True)
class RawCommit:
    sha: str
    short: str
    parents: tuple[str, ...]
    author: str
    message: str  # subject, blank line, body (trailers included)

    @property
    def subject(self) -> str:
        return self.message.split("\n", 1)[0].strip()


class GitHistory:
    """Read-only queries on one git repository (a work tree or a bare mirror)."""

    def __init__(self, git_dir: Path, shown: str = "", head: str = "HEAD") -> None:
        self.git_dir = Path(git_dir)
        self.shown = redact(shown or str(git_dir))
        self.head = head  # what "the current commit" is: HEAD of a checkout, the remote's in a mirror

    def git(self, *args: str, check: bool = True) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
        out = subprocess.run(["git", "-C", str(self.git_dir), *args], capture_output=True, env=env,
                             timeout=GIT_TIMEOUT)
        if check and out.returncode != 0:
            err = redact(out.stderr.decode("utf-8", "replace").strip())[:300]
            raise ReleaseError(f"{self.shown}: git {' '.join(args[:2])} failed: {err}")
        return out.stdout.decode("utf-8", "replace") if out.returncode == 0 else ""

    def tags(self) -> list[str]:
        return self.git("tag", "--list").split()

    def commit_of(self, ref: str) -> str | None:
        """The commit `ref` names (tags peeled), or None when there is none."""
        sha = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False).strip()
        return sha or None

    def tag_message(self, tag: str) -> str:
        """An annotated tag's message (signature left out); '' for a lightweight tag."""
        kind = self.git("for-each-ref", f"refs/tags/{tag}", "--format=%(objecttype)").strip()
        if kind != "tag":
            return ""
        text = self.git("for-each-ref", f"refs/tags/{tag}",
                        "--format=%(contents:subject)%0a%0a%(contents:body)").strip()
        return "" if text == tag else text  # `git tag -a v1.0.0 -m v1.0.0` says nothing

    def commits(self, since: str | None, until: str) -> list[RawCommit]:
        """Commits reachable from `until` and not from `since` (everything when None), newest first."""
        spec = [until] if since is None else [f"{since}..{until}"]
        out = self.git("log", "--topo-order", f"--format=%H{_FIELD}%h{_FIELD}%P{_FIELD}%an{_FIELD}%B{_RECORD}",
                       *spec, "--")
        result = []
        for record in out.split(_RECORD):
            record = record.strip("\n")
            if not record:
                continue
            sha, short, parents, author, message = record.split(_FIELD, 4)
            result.append(RawCommit(sha, short, tuple(parents.split()), author, message.strip()))
        return result

    def brought_in_by(self, merge: RawCommit) -> list[str]:
        """The commits a merge brought into its first parent's line (itself left out)."""
        out = self.git("rev-list", merge.sha, f"^{merge.parents[0]}")
        return [sha for sha in out.split() if sha != merge.sha]

    def file_at(self, commit: str, path: str) -> str | None:
        """A file's text at a commit, or None when the commit has no such file."""
        if not self.git("ls-tree", "--name-only", commit, "--", path).strip():
            return None
        return self.git("show", f"{commit}:{path}")


def redact(text: str) -> str:
    """Text with the user:password@ of any URL in it replaced: a token in git_url never reaches a log."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", text)


def mirror(url: str, cache: Path, head: bool = False) -> GitHistory:
    """A bare mirror of `url`'s tags (and its HEAD when asked) in `cache`, fetched now."""
    cache.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    repo = GitHistory(cache / f"{key}.git", shown=url, head=HEAD_REF)
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two releases at once fetch one after the other
        if not (repo.git_dir / "HEAD").exists():
            subprocess.run(["git", "init", "--quiet", "--bare", str(repo.git_dir)], check=True,
                           capture_output=True, timeout=GIT_TIMEOUT)
        refspecs = ["+refs/tags/*:refs/tags/*"] + ([f"+HEAD:{HEAD_REF}"] if head else [])
        # --prune: a tag deleted upstream must not become some release's "previous release".
        repo.git("fetch", "--quiet", "--prune", "--force", "--no-write-fetch-head", url, *refspecs)
    return repo


def open_history(source: str, cache: Path) -> GitHistory:
    """A local repository as it is, or a URL mirrored into `cache` (with its HEAD)."""
    path = Path(source).expanduser()
    if path.exists():
        repo = GitHistory(path, shown=source)
        if not repo.git("rev-parse", "--git-dir", check=False):
            raise ReleaseError(f"{source}: not a git repository; pass --repo with a checkout or a git URL")
        return repo
    return mirror(source, cache, head=True)
