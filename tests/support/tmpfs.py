"""A real full disk for tests: a small tmpfs mounted on a folder, filled up to a few KiB.

Needs root (mount); by hand without it the test skips, in CI it fails (conftest.need's rule).
The mount is always undone, even when the test fails.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import IN_CI

FILLER = ".filler"


def _refuse(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the tests run as root, where mount -t tmpfs works)")
    pytest.skip(message)


@contextmanager
def full_disk(folder: Path, free_bytes: int, size: str = "4m") -> Iterator[Path]:
    """Mount a tmpfs of `size` on `folder` and fill it until about `free_bytes` are left."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise AssertionError(f"{folder} is not empty: a mount would hide what is there")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        _refuse(f"cannot mount a tmpfs on {folder}: {out.stderr.strip()} (run as root)")
    try:
        fill(folder, free_bytes)
        yield folder
    finally:
        done = subprocess.run(["umount", str(folder)], capture_output=True, text=True)
        if done.returncode != 0:  # busy: detach it now, the kernel frees it when the last user goes
            subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path, free_bytes: int) -> None:
    stats = os.statvfs(folder)
    room = stats.f_bavail * stats.f_frsize - free_bytes
    with open(folder / FILLER, "wb") as fh:
        fh.write(b"\0" * max(room, 0))


def free(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize
