"""The secrets directory: one file per secret, mode 0600, in a folder only its owner can read.

Buildbot's SecretInAFile reads the same folder, so step commands get secrets by name and
never see them in the config, the database or a log.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import stat
from pathlib import Path

from velofarm.errors import SpecError
from velofarm.names import unsafe_name_reason


class SecretStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def ensure(self) -> None:
        """Create the folder (0700) if needed; refuse one that others can read."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.check()

    def check(self) -> None:
        if not self.directory.is_dir():
            return
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode & 0o077:
            raise SpecError(f"{self.directory}: secrets folder is readable by others (mode {mode:o}); "
                            f"run: chmod 700 {self.directory}")
        for path in self.directory.iterdir():
            fmode = stat.S_IMODE(path.stat().st_mode)
            if path.is_file() and fmode & 0o077:
                raise SpecError(f"{path}: secret file is readable by others (mode {fmode:o}); run: chmod 600 {path}")

    def path(self, name: str) -> Path:
        reason = unsafe_name_reason(name)
        if reason:
            raise SpecError(f"secret name '{name}' {reason}")
        return self.directory / name

    def get(self, name: str) -> str | None:
        path = self.path(name)
        if not path.is_file():
            return None
        self.check()
        return path.read_text(encoding="utf-8").strip()

    def put(self, name: str, value: str) -> Path:
        """Write a secret atomically with mode 0600."""
        self.ensure()
        return write_private_file(self.path(name), value + "\n")

    def remove(self, name: str) -> None:
        self.path(name).unlink(missing_ok=True)

    def generate(self, name: str, nbytes: int = 24) -> str:
        """A new random secret, stored; returned so it can be shown once."""
        value = pysecrets.token_urlsafe(nbytes)
        self.put(name, value)
        return value


def write_private_file(path: Path, text: str) -> Path:
    """Write `text` to `path` with mode 0600, via a temporary name and one rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    return path


def worker_secret_name(worker: str) -> str:
    return f"worker-{worker}"
