"""What changed in a release: commits since the previous release, grouped, or CHANGELOG.md's section.

Pure apart from reading git through `history.GitHistory`. The range is previous release .. this
tag, the previous release chosen by semantic-version order among the tags that match the release
pattern: a final release compares with the previous final, a pre-release with the previous
release of any kind; the first release lists every commit.

Merges: a merge commit is not listed; the commits it brought in are, each once, and a merge that
names a pull request (`Merge pull request #12 ...`) lends that number to those of its commits
that name none themselves. So a merged branch shows as its commits, each linked to its PR.

The release coordinator's "changelog" step runs it on the master before any build (internal
plumbing, not an ops command), so a CHANGELOG.md without the version's section stops the release
there and the step's log shows what the notes will say:

    python -m velofarm.release.changelog --spec farm.toml --tag TAG --commit SHA --git-cache DIR
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from velofarm.errors import ReleaseError, VelofarmError
from velofarm.publish.links import changelog_links
from velofarm.release.history import GitHistory, RawCommit, mirror
from velofarm.release.keepachangelog import CHANGELOG_FILE, version_section
from velofarm.spec.farm import Spec, load_spec
from velofarm.tags.semver import parse_tag

GROUPS = (("breaking", "Breaking changes"), ("feat", "Features"), ("fix", "Fixes"),
          ("perf", "Performance"), ("other", "Other changes"))
KINDS = {"feat": "feat", "feature": "feat", "fix": "fix", "bugfix": "fix", "perf": "perf"}
MAX_ENTRIES = 300  # a first release of a long history: GitHub refuses bodies over 125,000 characters
_CONVENTIONAL = re.compile(r"^(?P<type>[A-Za-z]+)(?:\((?P<scope>[^()\n]*)\))?(?P<bang>!)?:\s+(?P<text>.+)$")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s*(?P<text>.+)$", re.MULTILINE)
_CO_AUTHOR = re.compile(r"^Co-authored-by:\s*(?P<name>[^<\n]+?)\s*(?:<[^>\n]*>)?\s*$", re.MULTILINE | re.IGNORECASE)
_PR = re.compile(r"(?<![\w/&])#(\d+)\b")


@dataclass(frozen=True)
class Entry:
    """One commit as the changelog lists it."""

    sha: str
    short: str
    kind: str  # a key of GROUPS
    scope: str
    text: str  # the description (the whole subject for a commit that is not conventional)
    breaking_note: str = ""  # the BREAKING CHANGE footer's text
    merged_pr: int | None = None  # the pull request of the merge that brought the commit in


@dataclass(frozen=True)
class Changes:
    """Everything the notes say about what changed; rendered by `render_changes`."""

    tag: str
    commit: str
    previous: str | None  # the previous release tag; None for a first release
    annotation: str = ""  # the tag's own message
    section: str | None = None  # CHANGELOG.md's section for the version
    entries: tuple[Entry, ...] = ()
    contributors: tuple[str, ...] = ()
    omitted: int = 0  # entries beyond MAX_ENTRIES
    use_git: bool = True
    links: dict[str, str] = field(default_factory=dict)  # "pull" and "commit" URL prefixes ('' for none)


def previous_release(tag: str, tags: list[str], matches_pattern: Callable[[str], bool]) -> str | None:
    """The release before `tag` by semantic version; `matches_pattern(tag) -> bool` is the release rule."""
    ours = parse_tag(tag)
    if ours is None:
        raise ReleaseError(f"tag {tag}: not v + a semantic version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])")
    below = []
    for other in tags:
        version = parse_tag(other)
        if other == tag or version is None or not matches_pattern(other):
            continue
        if (ours.prerelease or not version.prerelease) and version.sort_key() < ours.sort_key():
            below.append((version.sort_key(), other))
    return max(below)[1] if below else None


def parse_commit(raw: RawCommit, merged_pr: int | None = None) -> Entry:
    """A commit as a changelog entry: Conventional Commits when it follows them, 'other' otherwise."""
    footer = _BREAKING_FOOTER.search(raw.message)
    note = footer.group("text").strip() if footer else ""
    m = _CONVENTIONAL.match(raw.subject)
    if not m:
        return Entry(raw.sha, raw.short, "breaking" if note else "other", "", raw.subject, note, merged_pr)
    kind = "breaking" if (m["bang"] or note) else KINDS.get(m["type"].lower(), "other")
    if kind == "other":  # docs:, chore:, refactor(x): ... the type is what says what it was
        return Entry(raw.sha, raw.short, kind, "", raw.subject, note, merged_pr)
    return Entry(raw.sha, raw.short, kind, (m["scope"] or "").strip(), m["text"].strip(), note, merged_pr)


def git_entries(history: GitHistory, since: str | None, until: str) -> tuple[list[Entry], list[str]]:
    """The range's commits as entries (newest first, merges folded in) and its contributors."""
    commits = history.commits(since, until)
    lent: dict[str, int] = {}
    for merge in reversed([c for c in commits if len(c.parents) > 1]):  # oldest first: inner merges win
        m = _PR.search(merge.subject)
        if m:
            for sha in history.brought_in_by(merge):
                lent.setdefault(sha, int(m.group(1)))
    entries = [parse_commit(c, None if _PR.search(c.subject) else lent.get(c.sha))
               for c in commits if len(c.parents) <= 1]
    names = {c.author.strip() for c in commits if c.author.strip()}
    for c in commits:
        names.update(n.strip() for n in _CO_AUTHOR.findall(c.message))
    return entries, sorted(names, key=str.casefold)


def collect_changes(history: GitHistory, tag: str, commit: str, notes: str, matches_pattern: Callable[[str], bool],
                    links: dict[str, str], tag_exists: bool = True) -> Changes:
    """The changes of `tag` (at `commit`) as farm.toml's [release] notes asks: git, changelog or both."""
    version = parse_tag(tag)
    if version is None:
        raise ReleaseError(f"tag {tag}: not v + a semantic version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])")
    previous = previous_release(tag, history.tags(), matches_pattern)
    text = history.file_at(commit, CHANGELOG_FILE)
    section = version_section(text, version.version) if text is not None else None
    if notes == "changelog" and not section:
        problem = "does not exist" if text is None else f"has no section for {version.version}"
        raise ReleaseError(f"{CHANGELOG_FILE} (at {commit[:12]}) {problem}; add one such as "
                           f"'## [{version.version}] - YYYY-MM-DD' with what changed, or set "
                           f"[release] notes = \"git\" (or \"both\") in farm.toml to list the commits")
    entries, contributors = git_entries(history, previous, commit) if notes != "changelog" else ([], [])
    return Changes(tag=tag, commit=commit, previous=previous,
                   annotation=history.tag_message(tag) if tag_exists else "",
                   section=section if notes != "git" else None, entries=tuple(entries[:MAX_ENTRIES]),
                   contributors=tuple(contributors), omitted=max(0, len(entries) - MAX_ENTRIES),
                   use_git=notes != "changelog", links=links)


def changes_of(spec: Spec, history: GitHistory, tag: str, commit: str, tag_exists: bool = True) -> Changes:
    """collect_changes with farm.toml's settings: the release rule, the notes source, the forge's links."""
    return collect_changes(history, tag, commit, spec.release.notes, spec.tag_matches,
                           changelog_links(spec.release), tag_exists)


def release_changes(spec: Spec, tag: str, commit: str, git_cache: Path) -> Changes:
    """The changes of a pushed tag, read from a mirror of the project's repository in `git_cache`."""
    return changes_of(spec, mirror(spec.repo_url, git_cache), tag, commit)


def changes_heading(changes: Changes) -> str:
    """The notes' section title: what the changes are measured against."""
    return f"What's changed since {changes.previous}" if changes.previous else "What's changed (first release)"


def _linked(text: str, pull: str) -> str:
    # Commit subjects are text, not markup: no HTML reaches the notes or the Releases page.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _PR.sub(lambda m: f"[#{m[1]}]({pull}{m[1]})", text) if pull else text


def render_entry(entry: Entry, links: dict[str, str]) -> str:
    """`- **scope:** text (#12) (abc1234)`, with the PR and the commit linked on a forge."""
    pull, commit = links.get("pull", ""), links.get("commit", "")
    text = _linked(entry.text, pull)
    if entry.merged_pr is not None:
        text += f" ({_linked(f'#{entry.merged_pr}', pull)})"
    short = f"[`{entry.short}`]({commit}{entry.sha})" if commit else f"`{entry.short}`"
    scope = f"**{_linked(entry.scope, '')}:** " if entry.scope else ""
    line = f"- {scope}{text} ({short})"
    if entry.breaking_note and entry.breaking_note != entry.text:
        line += f"\n  BREAKING CHANGE: {_linked(entry.breaking_note, pull)}"
    return line


def _git_lines(changes: Changes, level: str) -> list[str]:
    if not changes.entries:
        since = changes.previous or "the start of the history"
        return [f"No commits since {since}.", ""]
    lines: list[str] = []
    for kind, title in GROUPS:
        group = [render_entry(e, changes.links) for e in changes.entries if e.kind == kind]
        if group:
            lines += [f"{level} {title}", "", *group, ""]
    if changes.omitted:
        span = f"{changes.previous}..{changes.tag}" if changes.previous else changes.tag
        lines += [f"... and {changes.omitted} more commits (`git log --oneline {span}`).", ""]
    if changes.contributors:
        lines += [f"**Contributors:** {', '.join(_linked(n, '') for n in changes.contributors)}", ""]
    return lines


def render_changes(changes: Changes) -> str:
    """The changelog as markdown (no title): CHANGELOG.md's section and/or the grouped commits."""
    lines: list[str] = []
    if changes.section:
        lines += [changes.section, ""]
    if changes.use_git and changes.section:
        count = len(changes.entries) + changes.omitted
        lines += ["<details>", f"<summary>{count} commit(s)</summary>", ""] + _git_lines(changes, "####")
        lines += ["</details>", ""]
    elif changes.use_git:
        lines += _git_lines(changes, "###")
    return "\n".join(lines).strip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    """The coordinator's step: print the changelog of TAG; errors are one `error: ` line."""
    parser = argparse.ArgumentParser(prog="python -m velofarm.release.changelog",
                                     description="print the changelog the notes of a tag will carry")
    for opt in ("--spec", "--tag", "--commit", "--git-cache"):
        parser.add_argument(opt, required=True)
    args = parser.parse_args(argv)
    try:
        changes = release_changes(load_spec(Path(args.spec)), args.tag, args.commit, Path(args.git_cache))
    except VelofarmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"## {changes_heading(changes)}\n\n{render_changes(changes)}", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
