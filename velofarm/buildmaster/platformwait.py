"""A release's bounded wait for a platform whose workers are gone ([release] platform_timeout_minutes).

Buildbot's Trigger waits for ever for a build request no worker takes: a platform whose only
worker never comes back would hold its release open for ever. `PlatformWatch` runs beside the
release's Trigger. Every few seconds it looks at the trigger's requests that are neither complete
nor running a build; for each platform builder with such a request and none of its workers
connected, a clock runs (it stops when a worker connects or a build starts). A platform whose
clock passes the limit has its waiting requests cancelled, and the watch records which platform and
which workers it waited for, for the step's failure message.

The clock counts time without a connected worker, not time in the queue: a request waiting behind
another build on a connected worker is not overdue, however long that build takes. A latent
(Docker) worker is connected only while it builds, but its build exists while it starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task
from twisted.python import log

CHECK_EVERY = 30.0  # seconds between looks; a short limit looks more often (a quarter of it)


@dataclass(frozen=True)
class Overdue:
    """A platform the release stopped waiting for."""

    builder: str
    platform: str
    workers: tuple[str, ...]  # the workers that serve it; none was connected
    minutes: float

    def describe(self) -> str:
        workers = ", ".join(self.workers) or "none configured"
        return (f"platform {self.platform}: no worker connected for {self.minutes:g} minutes "
                f"(waited for {workers}); start one of them (velofarm doctor on that machine) or remove "
                f"the platform from farm.toml, then release again")


class PlatformWatch:
    """Watches `step.brids` (a Trigger's requests) while the step waits for them."""

    def __init__(self, step: Any, limit_minutes: float, platform_of_builder: dict[str, str]) -> None:
        self.step = step
        self.limit_minutes = limit_minutes
        self.platform_of_builder = platform_of_builder
        self.absent_since: dict[int, float] = {}  # builderid -> when it was first seen without a worker
        self.overdue: dict[int, Overdue] = {}
        self.loop = task.LoopingCall(self._check_logged)

    def start(self) -> None:
        self.loop.clock = self.step.master.reactor  # the master's clock, as the rest of the build uses
        self.loop.start(max(1.0, min(CHECK_EVERY, self.limit_minutes * 60 / 4)), now=False)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()

    @defer.inlineCallbacks
    def _check_logged(self) -> Any:
        try:
            yield self.check()
        except Exception as exc:  # a failed look (the database away a moment) must not end the watch
            log.msg(f"velofarm: the release's platform watch could not look at its builds: {exc!r}")

    @defer.inlineCallbacks
    def check(self) -> Any:
        master = self.step.master
        waiting = yield self._waiting(master)
        now = self.loop.clock.seconds()
        for builderid in [b for b in self.absent_since if b not in waiting]:
            del self.absent_since[builderid]
        for builderid, brids in waiting.items():
            if builderid in self.overdue:
                continue
            workers = yield master.data.get(("builders", builderid, "workers"))
            if any(w.get("connected_to") for w in workers or []):
                self.absent_since.pop(builderid, None)
                continue
            since = self.absent_since.setdefault(builderid, now)
            if now - since < self.limit_minutes * 60:
                continue
            builder = yield master.data.get(("builders", builderid))
            name = str(builder["name"]) if builder else str(builderid)
            overdue = Overdue(name, self.platform_of_builder.get(name, name),
                              tuple(sorted(str(w["name"]) for w in workers or [])), self.limit_minutes)
            self.overdue[builderid] = overdue
            log.msg(f"velofarm: {overdue.describe()}; cancelling build requests {brids}")
            for brid in brids:
                master.data.control("cancel", {"reason": f"no worker of {overdue.platform} connected for "
                                                         f"{self.limit_minutes:g} minutes"},
                                    ("buildrequests", brid))

    @defer.inlineCallbacks
    def _waiting(self, master: Any) -> Any:
        """{builderid: [brid, ...]} of the step's requests that wait for a worker (not complete, no build running)."""
        waiting: dict[int, list[int]] = {}
        for brid in list(self.step.brids):
            request = yield master.db.buildrequests.getBuildRequest(brid)
            if request is None or request.complete:
                continue
            builds = yield master.db.builds.getBuilds(buildrequestid=brid)
            if any(b.complete_at is None for b in builds):
                continue
            waiting.setdefault(int(request.builderid), []).append(int(brid))
        return waiting
