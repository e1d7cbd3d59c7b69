"""Caps every step log: a chatty build must not grow the master's database without bound.

Buildbot 4.3 still accepts `logMaxSize` / `logMaxTailSize` in the config but no longer applies
them (nothing reads them), so this service does, in the data API every log line passes through:
once a log has LOG_MAX_SIZE characters, further lines are held back, only the last
LOG_MAX_TAIL_SIZE of them kept, and when the log finishes a note of what was dropped and that
tail are written. The head (the command, the first error) and the tail (the final error) stay.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from buildbot.util import service
from twisted.internet import defer

LOG_MAX_SIZE = 16 * 1024 * 1024
LOG_MAX_TAIL_SIZE = 1024 * 1024
STDIO_TYPE = "s"  # stdio logs prefix each line with its stream: o(ut), e(rr), h(eader)


@dataclass
class CappedLog:
    kind: str
    written: int = 0
    tail: deque[str] = field(default_factory=deque)
    tail_size: int = 0
    dropped: int = 0


def split_at(content: str, room: int) -> tuple[str, list[str]]:
    """Whole lines of `content` that fit in `room` characters, and the lines that do not."""
    lines = content.splitlines(keepends=True)
    used, cut = 0, 0
    for line in lines:
        if used + len(line) > room:
            break
        used, cut = used + len(line), cut + 1
    return "".join(lines[:cut]), lines[cut:]


class LogCapState:
    """The cap's bookkeeping, free of Buildbot: what to write now, what to write at the end."""

    def __init__(self, max_size: int, tail_size: int) -> None:
        self.max_size, self.tail_size = max_size, tail_size
        self.logs: dict[int, CappedLog] = {}

    def added(self, logid: int, kind: str) -> None:
        self.logs[logid] = CappedLog(kind)

    def append(self, logid: int, content: str) -> str:
        """The part of `content` to write now ('' once the log is over its cap)."""
        log = self.logs.setdefault(logid, CappedLog(STDIO_TYPE if content[:1] in "oeh" else "t"))
        now, later = split_at(content, self.max_size - log.written) if not log.tail else ("", [content])
        log.written += len(now)
        for line in later:
            log.tail.append(line)
            log.tail_size += len(line)
            while log.tail_size > self.tail_size and len(log.tail) > 1:
                gone = log.tail.popleft()
                log.tail_size -= len(gone)
                log.dropped += len(gone)
        return now

    def finish(self, logid: int) -> str:
        """What to write before the log is finished: the note and the kept tail ('' when under the cap)."""
        log = self.logs.pop(logid, None)
        if log is None or not log.tail:
            return ""
        note = (f"[velofarm: {log.dropped} characters of this log were dropped: logs keep their first "
                f"{self.max_size} and last {self.tail_size} characters (logMaxSize, logMaxTailSize)]\n")
        return ("h" + note if log.kind == STDIO_TYPE else note) + "".join(log.tail)


class LogCap(service.BuildbotService):
    """Wraps the data API's addLog/appendLog/finishLog once the master runs."""

    name = "velofarm-log-cap"

    @defer.inlineCallbacks
    def startService(self) -> Any:
        yield super().startService()
        config = self.master.config
        self.state = LogCapState(getattr(config, "logMaxSize", None) or LOG_MAX_SIZE,
                                 getattr(config, "logMaxTailSize", None) or LOG_MAX_TAIL_SIZE)
        updates = self.master.data.updates
        add, append, finish = updates.addLog, updates.appendLog, updates.finishLog
        if getattr(append, "velofarm_capped", False):
            return  # already wrapped (a service restarted within one master process)

        @defer.inlineCallbacks
        def add_log(stepid: int, name: str, type: str) -> Any:
            logid = yield add(stepid=stepid, name=name, type=type)
            self.state.added(logid, type)
            return logid

        def append_log(logid: int, content: str) -> Any:
            now = self.state.append(logid, content)
            return append(logid=logid, content=now) if now else defer.succeed(None)

        @defer.inlineCallbacks
        def finish_log(logid: int) -> Any:
            rest = self.state.finish(logid)
            if rest:
                yield append(logid=logid, content=rest)
            return (yield finish(logid=logid))

        append_log.velofarm_capped = True  # type: ignore[attr-defined]
        updates.addLog, updates.appendLog, updates.finishLog = add_log, append_log, finish_log
