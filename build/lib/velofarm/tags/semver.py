"""Semantic-version rules for release tags (https://semver.org), not substring guesses."""

from __future__ import annotations

import re
from dataclasses import dataclass

SEMVER_TAG = re.compile(
    r"v(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?",
    re.ASCII,
)


@dataclass(frozen=True)
class TagVersion:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...]
    build: tuple[str, ...]

    @property
    def version(self) -> str:
        """The version as Cargo.toml writes it: the tag without 'v' and without build metadata."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        return text + ("-" + ".".join(self.pre) if self.pre else "")

    @property
    def prerelease(self) -> bool:
        """Any pre-release part makes a pre-release; build metadata does not."""
        return bool(self.pre)

    def sort_key(self) -> tuple[object, ...]:
        """Orders versions by semver precedence (build metadata ignored)."""
        pre_key: tuple[object, ...] = tuple(
            (0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        # A release sorts after all its pre-releases.
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_key)


def parse_tag(tag: str) -> TagVersion | None:
    """The version in a `vX.Y.Z[-pre][+build]` tag, or None when the tag is not one."""
    m = SEMVER_TAG.fullmatch(tag)
    if not m:
        return None
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    if any(p.isdigit() and len(p) > 1 and p.startswith("0") for p in pre):
        return None  # semver forbids leading zeros in numeric identifiers
    return TagVersion(int(m["major"]), int(m["minor"]), int(m["patch"]), pre,
                      tuple(m["build"].split(".")) if m["build"] else ())


def normalize_tag(ref: str) -> str:
    """One tag name from any source: 'refs/tags/v1.0.0' (poller) and 'v1.0.0' (hooks) alike."""
    ref = ref.strip()
    return ref[len("refs/tags/"):] if ref.startswith("refs/tags/") else ref


def is_prerelease(tag: str) -> bool:
    v = parse_tag(tag)
    return bool(v and v.prerelease)
