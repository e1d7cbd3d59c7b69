"""The build job: the plain JSON a platform build hands to the worker-side tools."""

from __future__ import annotations

from typing import Any

from velofarm.spec.farm import Spec
from velofarm.spec.platforms import Platform


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
