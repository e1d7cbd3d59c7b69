"""The master's artifact store: `<root>/<tag>/<platform>/`, complete or absent."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from velofarm.errors import PackError
from velofarm.release.checksums import read_checksum_file, sha256_file


def incoming_dir(root: Path, tag: str, platform: str, build_number: int) -> Path:
    """Where one build uploads its files before they are checked and moved into place."""
    return root / tag / f".incoming-{platform}-{build_number}"


def commit_incoming(root: Path, tag: str, platform: str, build_number: int, archive: str) -> Path:
    """Verify an uploaded archive against its .sha256 and atomically make it the platform's artifact."""
    incoming = incoming_dir(root, tag, platform, build_number)
    archive_path, sums_path = incoming / archive, incoming / f"{archive}.sha256"
    try:
        for path in (archive_path, sums_path):
            if not path.is_file():
                raise PackError(f"tag {tag}: platform {platform}: {path.name} did not arrive at the master")
        expected, name = read_checksum_file(sums_path)
        actual = sha256_file(archive_path)
        if name != archive or actual != expected:
            raise PackError(f"tag {tag}: platform {platform}: {archive} arrived with SHA-256 {actual}, "
                            f"but the worker computed {expected}; the transfer was damaged: rebuild")
        for path in (archive_path, sums_path):
            path.chmod(0o644)  # uploads arrive 0600 (mkstemp); artifacts are served to ops
        final = root / tag / platform
        old = root / tag / f".old-{platform}-{build_number}"
        if final.exists():
            os.replace(final, old)  # a rebuild replaces the previous artifact whole
        os.replace(incoming, final)
        shutil.rmtree(old, ignore_errors=True)
        return final / archive
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
