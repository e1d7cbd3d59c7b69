"""The Releases dashboard's data: one row per tag from build records and the artifact store.

No Buildbot here: the Buildbot layer hands in plain build records (with an allow-list of
properties, because dashboards bypass authz) and this module decides states, order, pages,
and which files of the artifact store may be downloaded.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from velofarm.errors import VelofarmError
from velofarm.tags.semver import parse_tag

# The only build properties the dashboard ever reads; anything else could be a secret.
ALLOWED_PROPERTIES = ("tag", "dry_run", "publish_state", "release_location", "release_facts")
# What other parts of the release write into release.json that the page shows (and nothing else):
# the changelog (markdown), signature files, provenance and SBOM file names, reproduced status.
FACT_KEYS = ("changelog", "signatures", "provenance", "sbom", "reproduced")
MAX_CHANGELOG = 20_000  # characters kept in the build property; the full text is in the release
FAILED_RESULTS = (2, 4)  # failure, exception
# Buildbot's result codes (buildbot.process.results), by index.
RESULT_NAMES = ("success", "warnings", "failure", "skipped", "exception", "retry", "cancelled")
PAGE_SIZE = 50
# A tag, platform or file name as the store writes them: no separators, no encoding, no dot-files.
STORE_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


@dataclass(frozen=True)
class StepNote:
    """One step of a build, as far as the page needs it: which one, what it said, its log's slug."""

    number: int
    name: str
    summary: str
    results: int | None
    complete: bool
    hidden: bool = False
    log: str = ""  # the slug of its first log ("stdio"), "" when it has none
    started_at: float | None = None


@dataclass(frozen=True)
class BuildRecord:
    """One build as the dashboard sees it; `props` holds allow-listed properties only."""

    builder: str
    builderid: int
    number: int
    complete: bool
    results: int | None
    started_at: float | None
    complete_at: float | None
    props: Mapping[str, object] = field(default_factory=dict)
    # A failed build's failing step; a running build's current step (see notable_step).
    step: StepNote | None = None

    @property
    def tag(self) -> str:
        return str(self.props.get("tag") or "")

    @property
    def state(self) -> str:
        if not self.complete:
            return "running"
        if self.results is None or not 0 <= self.results < len(RESULT_NAMES):
            return "unknown"
        return RESULT_NAMES[self.results]

    @property
    def duration(self) -> float | None:
        if not self.complete or self.started_at is None or self.complete_at is None:
            return None
        return self.complete_at - self.started_at


@dataclass(frozen=True)
class StoredArtifact:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PlatformCell:
    platform: str
    build: BuildRecord | None
    artifact: StoredArtifact | None = None
    waiting: bool = False  # the tag's release is running and this platform has not started yet

    @property
    def state(self) -> str:
        if self.build is not None:
            return self.build.state
        if self.waiting:
            return "waiting"
        return "stored" if self.artifact else "none"


@dataclass(frozen=True)
class TagRow:
    tag: str
    publish: str  # published, pre-release, draft, failed, dry run, dry run failed, not released
    release_build: BuildRecord | None
    cells: tuple[PlatformCell, ...]
    location: str = ""
    running: bool = False  # a release or platform build of this tag has not finished
    facts: Mapping[str, object] = field(default_factory=dict)  # allow-listed release.json facts


def release_rows(builds: Iterable[BuildRecord], release_builder: str, platform_builders: Mapping[str, str],
                 tags_in_store: Iterable[str] = ()) -> list[TagRow]:
    """One row per tag, newest version first; `platform_builders` maps builder name to platform."""
    latest: dict[tuple[str, str], BuildRecord] = {}
    releases: dict[str, list[BuildRecord]] = {}
    for build in builds:
        if not build.tag:
            continue
        if build.builder == release_builder:
            releases.setdefault(build.tag, []).append(build)
        elif build.builder in platform_builders:
            key = (build.tag, platform_builders[build.builder])
            if key not in latest or build.number > latest[key].number:
                latest[key] = build
    tags = set(releases) | {tag for tag, _ in latest} | set(tags_in_store)
    rows = []
    for tag in tags:
        attempts = releases.get(tag, [])
        publish, shown, location = publish_state(tag, attempts)
        current = max(attempts, key=lambda b: b.number) if attempts else None
        cells = tuple(_cell(p, latest.get((tag, p)), current) for p in platform_builders.values())
        running = any(not b.complete for b in [*attempts, *(c.build for c in cells if c.build)])
        rows.append(TagRow(tag=tag, publish=publish, release_build=shown, cells=cells, location=location,
                           running=running, facts=_facts_of(attempts)))
    return newest_first(rows)


def _facts_of(attempts: list[BuildRecord]) -> Mapping[str, object]:
    """The facts of the newest release attempt that recorded any."""
    for build in sorted(attempts, key=lambda b: b.number, reverse=True):
        facts = build.props.get("release_facts")
        if isinstance(facts, Mapping) and facts:
            return facts
    return {}


def release_facts(meta: Mapping[str, object]) -> dict[str, object]:
    """The allow-listed facts of a release.json, small enough for a build property."""
    facts: dict[str, object] = {}
    for key in FACT_KEYS:
        value = meta.get(key)
        if value in (None, "", [], {}):
            continue
        if key == "changelog":
            value = str(value)[:MAX_CHANGELOG]
        elif key == "signatures":
            value = [str(v) for v in value][:50] if isinstance(value, list) else [str(value)]
        elif key == "reproduced" and isinstance(value, Mapping):
            value = reproduced_summary(value)
        elif not isinstance(value, (bool, int)):
            value = str(value)[:500]
        facts[key] = value
    return facts


def reproduced_summary(reproduced: Mapping[str, object]) -> str:
    """release.json's `reproduced` as a person reads it: "2 of 2 platforms (2 builds each)"."""
    wanted = reproduced.get("builds_per_platform")
    platforms = reproduced.get("platforms")
    if not isinstance(wanted, int) or not isinstance(platforms, Mapping) or not platforms:
        return "–"
    if wanted < 2:
        return "not checked (reproduce = 1)"
    agreed = sum(1 for entry in platforms.values()
                 if isinstance(entry, Mapping) and isinstance(entry.get("agreed"), list)
                 and len(entry["agreed"]) >= wanted)
    return f"{agreed} of {len(platforms)} platforms ({wanted} builds each)"


def notable_step(build_state: str, steps: Iterable[StepNote]) -> StepNote | None:
    """The step a person wants to open: the first failing one of a failed build, the one running now."""
    shown = sorted((s for s in steps if not s.hidden), key=lambda s: s.number)
    if build_state == "running":
        running = [s for s in shown if not s.complete and s.started_at is not None]
        return running[-1] if running else None
    if build_state in ("failure", "exception", "cancelled"):
        failed = [s for s in shown if s.complete and s.results in FAILED_RESULTS]
        return failed[0] if failed else None
    return None


def matching(rows: list[TagRow], query: str) -> list[TagRow]:
    """The rows whose tag contains `query` (case-insensitive); all rows for an empty query."""
    needle = query.strip().lower()
    return [r for r in rows if needle in r.tag.lower()] if needle else rows


def _cell(platform: str, build: BuildRecord | None, release: BuildRecord | None) -> PlatformCell:
    if release is None or release.complete:
        return PlatformCell(platform, build)
    if build is not None and (build.started_at or 0) < (release.started_at or 0):
        build = None  # from an earlier attempt; the running release has not reached this platform yet
    return PlatformCell(platform, build, waiting=True)


def newest_first(rows: list[TagRow]) -> list[TagRow]:
    """Versions by semver precedence, highest first; then tags that are not versions, by name."""
    versions = [(v, r) for r in rows if (v := parse_tag(r.tag)) is not None]
    versions.sort(key=lambda vr: vr[0].sort_key(), reverse=True)
    others = sorted((r for r in rows if parse_tag(r.tag) is None), key=lambda r: r.tag)
    return [r for _, r in versions] + others


def publish_state(tag: str, builds: list[BuildRecord]) -> tuple[str, BuildRecord | None, str]:
    """(state, the release build it comes from, where it was published) for one tag's releases."""
    publishing = [b for b in builds if b.props.get("dry_run") is not True]
    if publishing:
        build = max(publishing, key=lambda b: b.number)
        location = str(build.props.get("release_location") or "")
        if not build.complete:
            return "draft", build, location
        if build.state in ("success", "warnings"):
            version = parse_tag(tag)
            return ("pre-release" if version and version.prerelease else "published"), build, location
        return "failed", build, location
    if builds:
        build = max(builds, key=lambda b: b.number)
        if not build.complete:
            return "dry run", build, ""
        return ("dry run" if build.state in ("success", "warnings") else "dry run failed"), build, ""
    return "not released", None, ""


def page_of(rows: list[TagRow], number: int, size: int = PAGE_SIZE) -> tuple[list[TagRow], int, int]:
    """The rows of page `number` (from 1, clamped to the pages there are), that number, and the page count."""
    pages = max(1, -(-len(rows) // size))
    number = min(max(1, number), pages)
    return rows[(number - 1) * size: number * size], number, pages


# --- the artifact store ------------------------------------------------------------------------

def stored_tags(root: Path) -> list[str]:
    """The tags with a folder in the artifact store."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    return [e.name for e in entries if STORE_SEGMENT.match(e.name) and e.is_dir(follow_symlinks=False)]


def stored_artifact(root: Path, tag: str, platform: str) -> StoredArtifact | None:
    """The archive stored for one tag and platform, with its size and checksum, or None."""
    if not (_plain_name(tag) and _plain_name(platform)):
        return None  # a tag property is data from a build: never let it steer a path
    folder = root / tag / platform
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.is_file(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return None
    for name in names:
        if name.endswith(".sha256") or f"{name}.sha256" not in names or not STORE_SEGMENT.match(name):
            continue
        try:
            digest = (folder / f"{name}.sha256").read_text(encoding="ascii", errors="replace").split()[0]
            return StoredArtifact(name, (folder / name).stat().st_size, digest.lower())
        except (OSError, IndexError):
            return None
    return None


def with_artifacts(rows: list[TagRow], root: Path) -> list[TagRow]:
    """The rows with each platform's stored archive filled in (only for the rows shown)."""
    return [TagRow(r.tag, r.publish, r.release_build,
                   tuple(PlatformCell(c.platform, c.build, stored_artifact(root, r.tag, c.platform),
                                      c.waiting) for c in r.cells),
                   r.location, r.running, r.facts) for r in rows]


class DownloadRefused(VelofarmError):
    """A download path that does not name a file of the artifact store.

    `kind` says why: "malformed" (not TAG/PLATFORM/FILE of plain names), "symlink", or "missing".
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def download_segments(raw: list[bytes]) -> tuple[str, str, str]:
    """Tag, platform and file name from the raw (still percent-encoded) path segments.

    Checked before any decoding: a legitimate name never needs encoding, so any '%' (an
    encoded slash, dot, backslash or NUL), '..', a dot-file or an empty segment is refused.
    """
    if len(raw) != 3:
        raise DownloadRefused("expected TAG/PLATFORM/FILE", "malformed")
    parts = []
    for segment in raw:
        text = segment.decode("ascii", "replace")
        if not _plain_name(text):
            raise DownloadRefused(f"not a name in the artifact store: {text[:80]!r}", "malformed")
        parts.append(text)
    return parts[0], parts[1], parts[2]


def _plain_name(text: str) -> bool:
    return bool(STORE_SEGMENT.match(text)) and ".." not in text


def open_artifact(root: Path, tag: str, platform: str, name: str) -> tuple[BinaryIO, int]:
    """The file `root/tag/platform/name` opened for reading, and its size.

    Each step is opened relative to the one before with O_NOFOLLOW, so a symlink anywhere below
    the store root (to a file or a folder, inside or outside the store) is refused, and nothing
    can be swapped between a check and the open.
    """
    if not all(_plain_name(part) for part in (tag, platform, name)):
        raise DownloadRefused("not a name in the artifact store", "malformed")
    try:
        fd = os.open(root, _READ | os.O_DIRECTORY)
    except OSError:
        raise DownloadRefused("the artifact store does not exist yet", "missing") from None
    try:
        for folder in (tag, platform):
            inner = _open_below(fd, folder, os.O_DIRECTORY)
            os.close(fd)
            fd = inner
        file_fd = _open_below(fd, name, 0)
    finally:
        os.close(fd)
    info = os.fstat(file_fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(file_fd)
        raise DownloadRefused(f"{tag}/{platform}/{name} is not a regular file", "missing")
    return os.fdopen(file_fd, "rb"), info.st_size


_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _open_below(dir_fd: int, name: str, extra: int) -> int:
    try:
        return os.open(name, _READ | os.O_NOFOLLOW | extra, dir_fd=dir_fd)
    except OSError:
        try:
            link = stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            link = False
        if link:
            raise DownloadRefused(f"{name!r} is a symlink; the store serves only its own files",
                                  "symlink") from None
        raise DownloadRefused(f"no {name!r} in the artifact store", "missing") from None
