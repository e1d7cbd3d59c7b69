"""What the artifact store keeps: leftovers of cut-off uploads go at start, old tags on request.

No Buildbot. The store is `<root>/<tag>/<platform>/`; an upload in progress is
`<root>/<tag>/.incoming-<platform>-<build>/` holding `.<name>.part`, and a rebuild briefly keeps
`<root>/<tag>/.old-<platform>-<build>/`. A master that was killed leaves these behind; nothing
resumes them after a restart (grants live in memory), so they are removed when it starts.

A tag whose release was published carries a `.published` marker (written by the publish step);
prune never removes such a tag, whatever its age.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from velofarm.artifacts.store import check_part
from velofarm.tags.semver import parse_tag

PUBLISHED_MARKER = ".published"
LEFTOVER_PREFIXES = (".incoming-", ".old-")


def remove_leftovers(root: Path) -> list[Path]:
    """Remove interrupted uploads and half-done replacements under the store; returns what went."""
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for tag_dir in root.iterdir():
        if tag_dir.name.startswith(".pruning-") and not tag_dir.is_symlink():
            shutil.rmtree(tag_dir, ignore_errors=True)  # a prune cut off after its rename
            removed.append(tag_dir)
            continue
        if not tag_dir.is_dir() or tag_dir.is_symlink():
            continue
        for entry in tag_dir.iterdir():
            if entry.name.startswith(LEFTOVER_PREFIXES) or entry.name.endswith(".part"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def mark_published(root: Path, tag: str, location: str) -> None:
    """Record that `tag`'s release was published (at `location`): prune keeps it forever."""
    folder = root / check_part(tag, "tag")
    if folder.is_dir():
        tmp = folder / f"{PUBLISHED_MARKER}.tmp"
        tmp.write_text(location + "\n", encoding="utf-8")
        tmp.replace(folder / PUBLISHED_MARKER)


@dataclass(frozen=True)
class PrunePlan:
    remove: list[str]
    keep_newest: list[str]
    keep_published: list[str]


def plan_prune(root: Path, keep: int) -> PrunePlan:
    """Which tags' artifacts go: all but the `keep` newest (semantic-version order), never a published one."""
    if keep < 1:
        from velofarm.errors import ArtifactError
        raise ArtifactError(f"--keep {keep}: keep at least the newest tag (--keep 1 or more)")
    tags = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    published = sorted(t for t in tags if (root / t / PUBLISHED_MARKER).is_file())
    others = [t for t in tags if t not in published]

    def order(tag: str) -> tuple[int, tuple[object, ...], float]:
        version = parse_tag(tag)  # dry runs of any tag name: newest by time after all versions
        return (1, version.sort_key(), 0.0) if version else (0, (), (root / tag).stat().st_mtime)

    newest_first = sorted(others, key=order, reverse=True)
    return PrunePlan(remove=sorted(newest_first[keep:]), keep_newest=newest_first[:keep], keep_published=published)


def prune(root: Path, plan: PrunePlan) -> None:
    for tag in plan.remove:
        folder = root / check_part(tag, "tag")
        if (folder / PUBLISHED_MARKER).exists():
            continue  # published since the plan was made
        trash = root / f".pruning-{tag}"
        folder.replace(trash)  # one rename: the tag is gone at once, never half there
        shutil.rmtree(trash, ignore_errors=True)
