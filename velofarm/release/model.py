"""A release as publishers see it: a verified directory of assets plus its metadata."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

RELEASE_JSON = "release.json"
NOTES_FILE = "RELEASE_NOTES.md"
SUMS_FILE = "SHA256SUMS"

CONTENT_TYPES = {".gz": "application/gzip", ".zip": "application/zip", ".sha256": "text/plain",
                 ".minisig": "text/plain", ".sig": "text/plain", ".intoto.jsonl": "application/jsonl",
                 ".cdx.json": "application/vnd.cyclonedx+json"}


def content_type(name: str) -> str:
    """The media type an asset is uploaded and served with."""
    for suffix, media in CONTENT_TYPES.items():
        if name.endswith(suffix):
            return media
    return "text/plain" if name == SUMS_FILE else "application/octet-stream"


@dataclass(frozen=True)
class Asset:
    """One file of the release that is uploaded: an archive, a .sha256 file, SHA256SUMS, its signatures,
    the provenance or the SBOM."""

    name: str
    path: Path
    size: int
    sha256: str  # lowercase hex

    @property
    def content_type(self) -> str:
        return content_type(self.name)


@dataclass(frozen=True)
class Release:
    """A verified release directory (see velofarm.release.verify.load_release)."""

    directory: Path
    project: str
    tag: str
    version: str
    commit: str
    title: str
    notes: str
    prerelease: bool
    platforms: tuple[str, ...]
    assets: tuple[Asset, ...]
