"""The farm as Buildbot will run it, as plain data: builders, the workers serving each, schedulers.

The one place the Buildbot layer's names live (config.py, schedulers.py, workers.py and
factories.py build their Buildbot objects from them), and what `velofarm check --list` prints.
Imports no Buildbot, so the face can print the farm without starting a master.
"""

from __future__ import annotations

from dataclasses import dataclass

from velofarm.spec.farm import Spec, Worker
from velofarm.spec.platforms import Platform

RELEASE_BUILDER = "release"
COORDINATOR = "release-coordinator"  # the master's local worker that runs the release builder
COORDINATOR_MAX_BUILDS = 64
TAG_SCHEDULER = "tags"
CHANGE_SECRET = "change-source-password"  # the push hook's password (config.py, localfarm.py)
FORCE_FORMS = (  # (scheduler name, label, dry run)
    ("release-dry-run", "Dry run (build and verify, publish nothing)", True),
    ("release", "Release (build, verify and publish)", False),
)


AGAIN = "-again"  # the second builder of a platform when [release] reproduce = 2


def platform_scheduler(platform: str) -> str:
    """The Triggerable the release builder fires for one platform."""
    return f"platform-{platform}"


@dataclass(frozen=True)
class PlatformBuilder:
    """One builder of a platform: `build-P`, and with reproduce = 2 also `build-P-again`, whose build
    must give the same bytes (its own builder folder and cargo target folder)."""

    platform: Platform
    name: str
    scheduler: str  # the Triggerable the release fires for it
    again: bool = False


def platform_builders(spec: Spec) -> list[PlatformBuilder]:
    """Every platform builder, in farm.toml's order, each platform's second builder right after it."""
    result = []
    for p in spec.platforms.values():
        result.append(PlatformBuilder(p, p.builder_name, platform_scheduler(p.name)))
        if spec.release.reproduce > 1:
            result.append(PlatformBuilder(p, p.builder_name + AGAIN, platform_scheduler(p.name) + AGAIN, True))
    return result


@dataclass(frozen=True)
class BuilderPlan:
    name: str
    what: str  # one line: the target and method, or what the coordinator does
    workers: tuple[tuple[str, int], ...]  # (worker name, max_builds)
    platform: str = ""  # "" for the release builder


@dataclass(frozen=True)
class SchedulerPlan:
    name: str
    kind: str  # the Buildbot scheduler class
    triggers: tuple[str, ...]  # builder names
    started_by: str


def buildbot_worker_names(w: Worker) -> list[str]:
    """A Docker worker with max_builds N is N latent workers (one container, one build each)."""
    if w.docker is None or w.max_builds == 1:
        return [w.name]
    return [w.name] + [f"{w.name}-{i}" for i in range(2, w.max_builds + 1)]


def _served_by(w: Worker) -> tuple[tuple[str, int], ...]:
    if w.docker is None:
        return ((w.name, w.max_builds),)
    return tuple((name, 1) for name in buildbot_worker_names(w))


def builder_plans(spec: Spec) -> list[BuilderPlan]:
    """One builder per platform (two with reproduce = 2, in farm.toml's order), then the release coordinator."""
    result = [BuilderPlan(b.name, f"{b.platform.target} ({b.platform.method})" + (", second build" if b.again else ""),
                          tuple(s for w in spec.workers_for(b.platform.name) for s in _served_by(w)), b.platform.name)
              for b in platform_builders(spec)]
    result.append(BuilderPlan(RELEASE_BUILDER, "the coordinator: every platform, then verify, publish",
                              ((COORDINATOR, COORDINATOR_MAX_BUILDS),)))
    return result


def tag_sources(spec: Spec) -> list[str]:
    """Where tags come from (changes.py and webhook.py start these)."""
    sources = [f"push hook (velofarm notify, with the {CHANGE_SECRET} secret)"]
    if spec.master.poll_interval > 0:
        sources.append(f"git poller every {spec.master.poll_interval} s")
    if spec.master.webhook_port:
        sources.append(f"signed webhook on port {spec.master.webhook_port}")
    return sources


def scheduler_plans(spec: Spec) -> list[SchedulerPlan]:
    """The tag scheduler, one trigger per platform, and the two force forms."""
    result = [SchedulerPlan(TAG_SCHEDULER, "TagScheduler", (RELEASE_BUILDER,),
                            "a new tag matching release.tag_pattern, once per tag")]
    result += [SchedulerPlan(b.scheduler, "Triggerable", (b.name,), f"the {RELEASE_BUILDER} builder")
               for b in platform_builders(spec)]
    result += [SchedulerPlan(name, "ForceScheduler", (RELEASE_BUILDER,), f"the web UI form {label.split(' (')[0]!r}")
               for name, label, _dry in FORCE_FORMS]
    return result
