"""Schedulers derived from the spec: tags start releases, the release fans out to platforms."""

from __future__ import annotations

from typing import Any

from buildbot.plugins import schedulers, util
from buildbot.process.properties import Properties
from buildbot.schedulers.forcesched import ValidationError
from twisted.internet import defer, threads
from twisted.python import log

from velofarm.buildmaster.farmplan import FORCE_FORMS, RELEASE_BUILDER, TAG_SCHEDULER, platform_scheduler
from velofarm.errors import VelofarmError
from velofarm.spec.farm import Spec
from velofarm.tags.gitrefs import tag_commit
from velofarm.tags.tagpolicy import decide


class TagScheduler(schedulers.AnyBranchScheduler):
    """Starts one release per matching tag, whatever source reported it, and only once per tag."""

    def __init__(self, name: str, tag_pattern: str, **kwargs: Any) -> None:
        self.tag_pattern = tag_pattern
        super().__init__(name=name, tag_pattern=tag_pattern, **kwargs)

    def checkConfig(self, tag_pattern: str = "", **kwargs: Any) -> None:  # type: ignore[override]
        super().checkConfig(**kwargs)

    def reconfigService(self, tag_pattern: str = "", **kwargs: Any) -> Any:  # type: ignore[override]
        self.tag_pattern = tag_pattern
        return super().reconfigService(**kwargs)

    @defer.inlineCallbacks
    def gotChange(self, change: Any, important: bool) -> Any:
        decision = decide(change.branch, self.tag_pattern, change.category)
        if not decision.release:
            log.msg(f"velofarm: ignored change {change.number}: {decision.reason}")
            return
        seen = yield self.getState("released_tags", [])
        if decision.tag in seen:
            log.msg(f"velofarm: tag {decision.tag} already started a release; ignoring change {change.number}")
            return
        log.msg(f"velofarm: release of {decision.tag} from change {change.number}")
        props = Properties()
        props.setProperty("tag", decision.tag, "TagScheduler")
        props.setProperty("dry_run", False, "TagScheduler")
        # The sourcestamp carries the tag as every page shows it (v1.0.0), not the poller's or the
        # hook's ref (refs/tags/v1.0.0), so the release and its platform builds share one label.
        sourcestamp = {"codebase": change.codebase, "repository": change.repository, "branch": decision.tag,
                       "revision": change.revision, "project": change.project}
        yield self.addBuildsetForSourceStamps(sourcestamps=[sourcestamp], reason=f"tag {decision.tag} pushed",
                                              properties=props, builderNames=self.builderNames)
        # Changes are handled one at a time (Buildbot's change consumption lock), so recording the
        # tag after the buildset exists cannot let a second arrival slip through.
        yield self.setState("released_tags", [*seen, decision.tag])


class TagParameter(util.StringParameter):
    """The Tag field: must match the release pattern and exist in the repository."""

    def __init__(self, name: str, tag_pattern: str, repo_url: str, **kwargs: Any) -> None:
        super().__init__(name=name, required=True, **kwargs)
        self.tag_pattern = tag_pattern
        self.repo_url = repo_url

    @defer.inlineCallbacks
    def updateFromKwargs(self, properties: dict[str, Any], kwargs: dict[str, Any],
                         sourcestamps: dict[str, dict[str, Any]] | None = None, **unused: Any) -> Any:
        tag = (self.getFromKwargs(kwargs) or "").strip()
        decision = decide(tag, self.tag_pattern)
        if not decision.release:
            raise ValidationError(f"{decision.reason} (e.g. v1.2.3 or v1.2.3-rc.1)")
        try:
            commit = yield threads.deferToThread(tag_commit, self.repo_url, decision.tag)
        except VelofarmError as exc:
            raise ValidationError(str(exc)) from None
        if commit is None:
            raise ValidationError(f"tag '{decision.tag}' does not exist in {self.repo_url}; push it first")
        properties[self.name] = decision.tag
        # Label the build with the tag, as pushed releases are (the form has no branch field). The
        # codebase fields run before the properties, so the sourcestamp exists by now.
        for sourcestamp in (sourcestamps or {}).values():
            sourcestamp["branch"] = decision.tag


def force_schedulers(spec: Spec) -> list[Any]:
    """Two forms: a dry run (builds and verifies, publishes nowhere) and a publishing release."""
    result = []
    for name, label, dry in FORCE_FORMS:
        result.append(schedulers.ForceScheduler(
            name=name, label=label, buttonName="Start" if dry else "Publish release",
            builderNames=[RELEASE_BUILDER],
            codebases=[util.CodebaseParameter("", hide=True, branch=util.FixedParameter("branch", ""),
                                              revision=util.FixedParameter("revision", ""),
                                              repository=util.FixedParameter("repository", ""),
                                              project=util.FixedParameter("project", ""))],
            reason=util.StringParameter(name="reason", label="Reason", default="forced release", size=40),
            properties=[TagParameter("tag", spec.release.tag_pattern, spec.repo_url, label="Tag", size=20),
                        util.FixedParameter("dry_run", default=dry)]))
    return result


def all_schedulers(spec: Spec) -> list[Any]:
    result: list[Any] = [TagScheduler(name=TAG_SCHEDULER, tag_pattern=spec.release.tag_pattern,
                                      builderNames=[RELEASE_BUILDER])]
    result += [schedulers.Triggerable(name=platform_scheduler(p.name), builderNames=[p.builder_name])
               for p in spec.platforms.values()]
    return result + force_schedulers(spec)
