"""Which incoming refs start a release, and why the others do not."""

from __future__ import annotations

import re
from dataclasses import dataclass

from velofarm.tags.semver import normalize_tag


@dataclass(frozen=True)
class TagDecision:
    tag: str
    release: bool
    reason: str


def decide(ref: str | None, pattern: str, category: str | None = None) -> TagDecision:
    """Decide whether a change on `ref` (a tag name or refs/tags/NAME) starts a release."""
    if not ref:
        return TagDecision("", False, "the change names no branch or tag")
    if ref.startswith("refs/heads/") or (category not in (None, "", "tag") and not ref.startswith("refs/tags/")):
        return TagDecision(ref, False, f"'{ref}' is a branch, not a tag; only tags release")
    tag = normalize_tag(ref)
    if not re.fullmatch(pattern, tag):
        return TagDecision(tag, False, f"tag '{tag}' does not match the release pattern {pattern}")
    return TagDecision(tag, True, f"tag '{tag}' matches the release pattern")
