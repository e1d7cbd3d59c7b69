"""The section of a CHANGELOG.md (Keep a Changelog style) that belongs to one version."""

from __future__ import annotations

import re

CHANGELOG_FILE = "CHANGELOG.md"
_LINK_DEFINITION = re.compile(r"^\s*\[[^\]]+\]:\s*\S+")


def _heading_version(line: str) -> str | None:
    """'0.2.0' for `## [0.2.0] - 2026-11-30`, `## 0.2.0`, `## [v0.2.0]`; None for other lines."""
    m = re.match(r"^##\s+\[?v?([0-9][^\]\s]*)\]?(?:\s|$)", line)
    return m.group(1) if m else None


def version_section(text: str, version: str) -> str | None:
    """The body under `## [version]`, up to the next version heading; None when there is none.

    Link definitions (`[0.2.0]: https://...`) that close the file are left out: they belong to
    the whole file, not to one version.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _heading_version(line) == version), None)
    if start is None:
        return None
    body: list[str] = []
    for line in lines[start + 1:]:
        if re.match(r"^#{1,2}\s", line):
            break
        body.append(line)
    while body and (not body[-1].strip() or _LINK_DEFINITION.match(body[-1])):
        body.pop()
    return "\n".join(body).strip("\n")
