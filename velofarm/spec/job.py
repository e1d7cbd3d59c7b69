"""The build job: the plain JSON a platform build hands to the worker-side tools."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from velofarm.spec.farm import Spec
from velofarm.spec.platforms import Platform

# What an archive may hold besides its binaries: the shipped files and folders, and the tar/zip
# headers. Generous on purpose: the grant stops a worker filling the master's disk, not a release.
ARCHIVE_OVERHEAD_BYTES = 64 * 1024 * 1024


def stage_name(project: str, tag: str, platform: Platform) -> str:
    """`<project>-<tag>-<target>`: the stage folder, and the archive's one top-level folder."""
    return f"{project}-{tag}-{platform.target}"


def archive_name(project: str, tag: str, platform: Platform) -> str:
    """`<project>-<tag>-<target>.<ext>`, the one name for a platform's archive."""
    return f"{stage_name(project, tag, platform)}.{platform.archive}"


def build_job(spec: Spec, platform: Platform) -> dict[str, Any]:
    """Everything the worker needs except the tag, which arrives as a build property."""
    return {
        "format": 1,
        "project": spec.project.name,
        "manifest": spec.project.manifest,
        "needs_protoc": spec.project.needs_protoc,
        "ship": list(spec.project.ship),
        "binaries": [{"name": b.name, "smoke": list(b.smoke) if b.smoke else None}
                     for b in spec.project.binaries],
        "platform": platform.to_json(),
    }


def upload_limit_bytes(spec: Spec, platform: Platform) -> int:
    """The most an upload of this platform's archive may send: each binary at the size gate's
    limit (platforms.NAME.size_limit_mb), plus ARCHIVE_OVERHEAD_BYTES."""
    return len(spec.project.binaries) * platform.size_limit_mb * 1024 * 1024 + ARCHIVE_OVERHEAD_BYTES


def build_argv(platform: dict[str, Any], manifest: str = "Cargo.toml") -> list[str]:
    """The build command for a platform (its job JSON, Platform.to_json()): cargo (or cross) build
    --release --locked ...; the master puts it in the build step, `verify --rebuild` runs it."""
    program = "cross" if platform.get("method") == "cross" else (platform.get("cargo") or "cargo")
    argv = [program, "build", "--release", "--locked", "--no-default-features", "--target", platform["target"]]
    if PurePosixPath(manifest) != PurePosixPath("Cargo.toml"):
        argv += ["--manifest-path", manifest]
    return argv
