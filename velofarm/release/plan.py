"""What a release of a tag would do, worked out without starting anything (`velofarm plan`).

Pure: reads the project's history through `history.GitHistory` and the spec; the caller says
which workers are connected (None when no master answered).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from velofarm.errors import ReleaseError
from velofarm.publish.links import describe_target
from velofarm.release.changelog import changes_heading, changes_of, render_changes
from velofarm.release.history import GitHistory
from velofarm.release.notes import NotesIntro, render_head
from velofarm.spec.farm import Spec
from velofarm.spec.job import archive_name
from velofarm.tags.semver import TagVersion, parse_tag
from velofarm.tags.tagpolicy import decide
from velofarm.worker_tools.preflight import version_in_manifest


@dataclass(frozen=True)
class PlatformPlan:
    name: str
    target: str
    archive: str
    workers: tuple[tuple[str, bool | None], ...]  # (worker, connected); None: unknown


@dataclass
class Plan:
    tag: str
    repo: str
    tag_rule: str  # why the tag does or does not start a release
    commit: str = ""
    from_head: bool = False  # the tag does not exist yet: planned from the repository's HEAD
    tag_version: str = ""
    cargo_version: str | None = None
    prerelease: bool = False
    latest: bool = False
    highest_final: str | None = None  # the release that is latest now
    platforms: list[PlatformPlan] = field(default_factory=list)
    publisher: str = ""
    destination: str = ""
    notes: str = ""
    problems: list[str] = field(default_factory=list)  # each one stops the release

    @property
    def would_start(self) -> bool:
        return not self.problems


def highest_final(spec: Spec, tags: list[str], exclude: str) -> tuple[TagVersion, str] | None:
    """The highest final release tag (by semantic version) other than `exclude`."""
    finals = [(v, t) for t in tags if t != exclude and spec.tag_matches(t)
              and (v := parse_tag(t)) is not None and not v.prerelease]
    return max(finals, key=lambda pair: pair[0].sort_key()) if finals else None


def make_plan(spec: Spec, history: GitHistory, tag: str, connected: dict[str, bool | None]) -> Plan:
    """The plan for `tag`; ReleaseError when neither the tag nor a HEAD commit can be found."""
    decision = decide(tag, spec.release.tag_pattern)
    plan = Plan(tag=tag, repo=history.shown, tag_rule=decision.reason)
    version = parse_tag(tag)
    if not decision.release or version is None:
        plan.problems.append(decision.reason if not decision.release else
                             f"tag '{tag}' is not v + a semantic version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])")
        return plan
    _find_commit(plan, history)
    plan.tag_version, plan.prerelease = version.version, version.prerelease
    _check_version(plan, spec, history)
    tags = history.tags()
    top = highest_final(spec, tags, tag)
    plan.highest_final = top[1] if top else None
    plan.latest = not version.prerelease and (top is None or version.sort_key() > top[0].sort_key())
    plan.platforms = [PlatformPlan(name, p.target, archive_name(spec.project.name, tag, p),
                                   tuple((w.name, connected.get(w.name)) for w in spec.workers_for(name)))
                      for name, p in spec.platforms.items()]
    plan.publisher = spec.release.publisher
    plan.destination = describe_target(spec.release, spec.resolve(spec.release.directory), tag)
    _write_notes(plan, spec, history)
    return plan


def _find_commit(plan: Plan, history: GitHistory) -> None:
    commit = history.commit_of(f"refs/tags/{plan.tag}")
    if commit is None:
        commit = history.commit_of(history.head)
        if commit is None:
            raise ReleaseError(f"tag {plan.tag} is not in {history.shown}, and it has no commit to plan from "
                               "(empty repository?); pass --repo with the project's checkout or URL")
        plan.from_head = True
    plan.commit = commit


def _check_version(plan: Plan, spec: Spec, history: GitHistory) -> None:
    manifest = spec.project.manifest
    text = history.file_at(plan.commit, manifest)
    if text is None:
        plan.problems.append(f"{manifest} is missing at {plan.commit[:12]}; set [project] manifest in farm.toml")
        return
    try:
        plan.cargo_version = version_in_manifest(text)
    except ValueError as exc:
        plan.problems.append(f"{manifest} at {plan.commit[:12]} is not valid TOML: {exc}")
        return
    if plan.cargo_version != plan.tag_version:
        plan.problems.append(f"{manifest} says version {plan.cargo_version!r} but tag {plan.tag} needs "
                             f"{plan.tag_version!r}: set version = \"{plan.tag_version}\" in {manifest}, "
                             "run cargo update --workspace (Cargo.lock), commit, then tag that commit")


def _write_notes(plan: Plan, spec: Spec, history: GitHistory) -> None:
    try:
        changes = changes_of(spec, history, plan.tag, plan.commit, tag_exists=not plan.from_head)
    except ReleaseError as exc:
        plan.problems.append(str(exc))
        return
    intro = NotesIntro(changes.annotation, changes_heading(changes), render_changes(changes))
    head = render_head(spec.project.title, plan.tag, plan.commit, plan.prerelease, len(plan.platforms), intro)
    plan.notes = "\n".join(head).rstrip("\n") + "\n"
