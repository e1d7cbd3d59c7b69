"""Small real git histories for the changelog and plan tests (git through subprocess, fixed dates)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


class Repo:
    """A work tree in `path`; every commit gets the next fixed date so runs are repeatable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.clock = 0
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, author: str = "Ada Lovelace") -> str:
        self.clock += 1
        date = f"2026-01-01T00:{self.clock // 60:02d}:{self.clock % 60:02d}Z"
        email = author.split()[0].lower() + "@example.com"
        env = {**os.environ, "GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": email,
               "GIT_COMMITTER_NAME": "Release Bot", "GIT_COMMITTER_EMAIL": "bot@example.com",
               "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "GIT_CONFIG_GLOBAL": os.devnull}
        out = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, f"git {' '.join(args)}: {out.stderr}"
        return out.stdout.strip()

    def commit(self, message: str, author: str = "Ada Lovelace", path: str = "log.txt") -> str:
        """Commit a change to `path` with `message`; returns the commit's sha."""
        file = self.path / path
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "a", encoding="utf-8") as fh:
            fh.write(message.splitlines()[0] + "\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message, author=author)
        return self.git("rev-parse", "HEAD")

    def write(self, path: str, text: str, message: str) -> str:
        (self.path / path).write_text(text, encoding="utf-8")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, message: str | None = None) -> None:
        if message is None:
            self.git("tag", name)
        else:
            self.git("tag", "-a", name, "-m", message)
