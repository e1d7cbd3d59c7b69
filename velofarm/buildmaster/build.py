"""The Build class every velofarm builder uses: Buildbot's, minus two hangs.

1. Buildbot 4.3 pings the worker before the first step (buildbot/process/workerforbuilder.py,
   `Ping`) with no timeout. A worker that is stopped, frozen or cut off by the network keeps its
   TCP connection looking alive, and the build stays "pinging worker" for ever. Here the ping
   has PING_TIMEOUT seconds; then the connection is dropped (the worker is detached, its builds go
   to other workers) and the build ends RETRY, "error while worker_ping".
2. (buildbot/process/build.py) When preparing a worker fails (the ping, or starting
the build on it) because the worker's connection just went away, `startBuild` calls
`buildPreparationFailure`, which calls `self.workerforbuilder.worker.putInQuarantine()`. The
worker is already detached, `worker` is None, the AttributeError escapes `startBuild`, and
`buildFinished` is never called: the build shows "preparing worker" / "pinging worker" forever,
and the release waiting on it never ends. Here the failure is recorded without the (gone) worker,
so the build finishes RETRY ("worker not pinged") and its request goes back in the queue for the
next worker of that platform.
"""

from __future__ import annotations

from typing import Any

from buildbot.process.build import Build
from buildbot.process.results import EXCEPTION
from twisted.internet import defer
from twisted.python import failure, log

PING_TIMEOUT = 30.0  # seconds a worker has to answer the master's ping before a build


class FarmBuild(Build):
    def startBuild(self, workerforbuilder: Any) -> Any:
        if not getattr(workerforbuilder, "velofarm_ping_bounded", False):
            workerforbuilder.ping = _bounded_ping(workerforbuilder, workerforbuilder.ping, self.master.reactor)
            workerforbuilder.velofarm_ping_bounded = True
        return super().startBuild(workerforbuilder)

    @defer.inlineCallbacks
    def buildPreparationFailure(self, why: Any, state_string: str) -> Any:
        if self.stopped or getattr(self.workerforbuilder, "worker", None) is not None:
            return (yield super().buildPreparationFailure(why, state_string))
        log.msg(f"velofarm: the worker of {self} went away while {state_string}; the build is retried")
        step = self._preparation_step
        if isinstance(why, failure.Failure):
            yield step.addLogWithFailure(why)
        yield self.master.data.updates.setStepStateString(
            step.stepid, f"worker {self.workername} lost while {state_string}")
        yield self.master.data.updates.finishStep(step.stepid, EXCEPTION, False)
        return None


def _bounded_ping(workerforbuilder: Any, ping: Any, reactor: Any) -> Any:
    """`ping` (a WorkerForBuilder's) that fails after PING_TIMEOUT and drops the silent connection."""
    def bounded() -> Any:
        worker = workerforbuilder.worker
        d = ping()

        def timed_out(reason: failure.Failure) -> failure.Failure:
            if reason.check(defer.TimeoutError):
                log.msg(f"velofarm: worker {getattr(worker, 'workername', '?')} did not answer the ping in "
                        f"{PING_TIMEOUT:.0f} s; dropping its connection")
                conn = getattr(worker, "conn", None)
                if conn is not None:
                    conn.loseConnection()
            return reason

        return d.addTimeout(PING_TIMEOUT, reactor).addErrback(timed_out)
    return bounded
