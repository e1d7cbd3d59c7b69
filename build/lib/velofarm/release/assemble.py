"""Collect every platform's artifacts, verify them, and write one complete release directory."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from velofarm.artifacts.store import read_build_image
from velofarm.errors import ReleaseError
from velofarm.release.checksums import checksum_line, read_checksum_file, sha256_file
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, SUMS_FILE
from velofarm.release.notes import NotesPlatform, render_notes
from velofarm.spec.farm import Spec
from velofarm.spec.job import archive_name
from velofarm.tags.semver import TagVersion, parse_tag


def collect_platform(spec: Spec, tag: str, platform_name: str, artifacts_root: Path) -> tuple[Path, str]:
    """The verified archive of one platform and its SHA-256; ReleaseError naming what is wrong."""
    platform = spec.platforms[platform_name]
    name = archive_name(spec.project.name, tag, platform)
    folder = artifacts_root / tag / platform_name
    archive, sums = folder / name, folder / f"{name}.sha256"
    for path in (archive, sums):
        if not path.is_file():
            raise ReleaseError(f"tag {tag}: platform {platform_name}: {path} is missing from the artifact "
                               f"store; rebuild the platform (force build-{platform_name} with tag={tag})")
    expected, listed = read_checksum_file(sums)
    if listed != name:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {sums.name} names '{listed}', not '{name}'")
    actual = sha256_file(archive)
    if actual != expected:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {name} has SHA-256 {actual} but its .sha256 "
                           f"says {expected}; the archive changed after it was built: rebuild the platform")
    return archive, actual


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def assemble_release(spec: Spec, tag: str, commit: str, artifacts_root: Path, out: Path) -> Path:
    """Write `out` (which must not exist) as a complete, verified release directory."""
    version = parse_tag(tag)
    if version is None:
        raise ReleaseError(f"tag {tag}: not v + a semantic version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])")
    if out.exists():
        raise ReleaseError(f"{out}: already exists; remove it or pick another output folder")
    found = {name: collect_platform(spec, tag, name, artifacts_root) for name in spec.platforms}
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_release(spec, tag, commit, version, found, tmp)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _write_release(spec: Spec, tag: str, commit: str, version: TagVersion,
                   found: dict[str, tuple[Path, str]], tmp: Path) -> None:
    notes_platforms, assets, sums = [], [], []
    for name, (archive, digest) in found.items():
        platform = spec.platforms[name]
        _link_or_copy(archive, tmp / archive.name)
        (tmp / f"{archive.name}.sha256").write_text(checksum_line(digest, archive.name), encoding="utf-8")
        size = archive.stat().st_size
        sums.append(checksum_line(digest, archive.name))
        notes_platforms.append(NotesPlatform(name, platform.target, platform.os, archive.name, digest, size,
                                             platform.exe_suffix))
    (tmp / SUMS_FILE).write_text("".join(sorted(sums, key=lambda line: line.split("  ")[1])), encoding="utf-8")
    binaries = [b.name for b in spec.project.binaries]
    runnable = [b.name for b in spec.project.binaries if b.smoke] or binaries
    notes = render_notes(spec.project.title, spec.project.name, tag, commit, version.prerelease, notes_platforms,
                         binaries, list(spec.project.ship), runnable[0])
    (tmp / NOTES_FILE).write_text(notes, encoding="utf-8")
    # Archives were hashed once (collect_platform); only the small files written here are hashed now.
    known = {archive.name: digest for archive, digest in found.values()}
    for path in sorted(tmp.iterdir()):
        if path.name != NOTES_FILE:
            digest = known.get(path.name) or sha256_file(path)
            assets.append({"name": path.name, "size": path.stat().st_size, "sha256": digest})
    meta: dict[str, Any] = {
        "format": 1, "project": spec.project.name, "title": f"{spec.project.title} {tag}", "tag": tag,
        "version": version.version, "commit": commit,
        "prerelease": version.prerelease,
        # builder_image(_digest): the container image a Docker worker built the platform in.
        "platforms": [{"name": p.name, "target": p.target, "archive": p.archive, "sha256": p.sha256,
                       "size": p.size, **read_build_image(found[p.name][0].parent)} for p in notes_platforms],
        "assets": assets, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (tmp / RELEASE_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
