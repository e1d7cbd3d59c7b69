"""Do two builds of one platform agree byte for byte? And if not, where do they first differ?

Pure: no Buildbot. The coordinator's "compare builds" step calls `compare_builds` for each platform
when `[release] reproduce = 2`; assemble refuses a release whose builds disagree.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DIFFOSCOPE_TIMEOUT = 600
DIFFOSCOPE_MAX_BYTES = 4 * 1024 * 1024  # the report becomes a build log, stored in the database


@dataclass(frozen=True)
class BuiltArchive:
    """One build's archive of a platform, and how to name that build to a person."""

    build: str  # e.g. "build-linux-x86_64 #4 (build 17, worker linux-1)"
    path: Path
    sha256: str


@dataclass(frozen=True)
class Comparison:
    platform: str
    agreed: bool
    report: str  # one paragraph a person can act on; empty when the builds agreed


def compare_builds(platform: str, first: BuiltArchive, second: BuiltArchive) -> Comparison:
    """Byte-compare two archives; on a mismatch, a report naming both builds and the first difference."""
    if first.sha256 == second.sha256:
        return Comparison(platform, True, "")
    report = (f"platform {platform} is not reproducible: {first.build} made {first.path.name} with SHA-256 "
              f"{first.sha256}, {second.build} made it with SHA-256 {second.sha256}.\n"
              f"first difference: {first_difference(first.path, second.path)}\n"
              "Look for a build script or dependency that embeds the time, the host, a random value or "
              "a path; nothing was published.\n")
    return Comparison(platform, False, report)


def _members(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """(name, kind+mode, content) of every entry, in archive order."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                yield info.filename, f"mode {info.external_attr >> 16:o}", zf.read(info) if not info.is_dir() else b""
        return
    with tarfile.open(path) as tf:
        for member in tf:
            handle = tf.extractfile(member) if member.isfile() else None
            content = handle.read() if handle else b""
            yield member.name, f"mode {member.mode:o} mtime {member.mtime} owner {member.uid}:{member.gid}", content


def first_difference(a: Path, b: Path) -> str:
    """The first entry whose name, metadata or content differs, or what else differs."""
    try:
        left, right = list(_members(a)), list(_members(b))
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as exc:
        return f"the archives cannot both be read ({exc})"
    right_by_name = {name: (meta, data) for name, meta, data in right}
    for name, meta, data in left:
        if name not in right_by_name:
            return f"{name} is only in the first build's archive"
        other_meta, other_data = right_by_name[name]
        if data != other_data:
            return f"{name}: content differs ({_first_byte(data, other_data)})"
        if meta != other_meta:
            return f"{name}: {meta} in the first build, {other_meta} in the second"
    extra = sorted(set(right_by_name) - {name for name, _, _ in left})
    if extra:
        return f"{extra[0]} is only in the second build's archive"
    if [n for n, _, _ in left] != [n for n, _, _ in right]:
        return "the entries are the same but in a different order"
    return "every entry is the same; the archive container differs (compression or headers)"


def _short_sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _first_byte(a: bytes, b: bytes) -> str:
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return f"first at byte {at} of {len(a)} / {len(b)}; sha256 {_short_sha(a)} / {_short_sha(b)}"


def diffoscope_html(a: Path, b: Path) -> str | None:
    """diffoscope's HTML report of the two archives, when diffoscope is installed (it is optional)."""
    tool = shutil.which("diffoscope")
    if tool is None:
        return None
    try:
        done = subprocess.run([tool, "--html", "-", "--max-report-size", str(DIFFOSCOPE_MAX_BYTES),
                               str(a), str(b)], capture_output=True, text=True,
                              timeout=DIFFOSCOPE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout or None  # exit 1 means "they differ", which is why it was run
