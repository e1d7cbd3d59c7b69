"""A bench-only master service that timestamps Buildbot's own events (changes, buildsets, builds,
steps) to a JSON-lines file, to the millisecond: the REST API keeps whole seconds only.

It subscribes to the master's message queue and changes nothing, so the farm under test runs
exactly as configured; bench.release adds it to the velofarm master's c['services'].
"""

from __future__ import annotations

import json
import time
from typing import Any

from buildbot.util.service import BuildbotService
from twisted.internet import defer

TOPICS = [("changes", None, "new"), ("buildsets", None, "new"), ("buildsets", None, "complete"),
          ("buildrequests", None, "new"), ("builds", None, None), ("steps", None, None),
          ("workers", None, None)]
FIELDS = ("buildid", "builderid", "number", "name", "stepid", "bsid", "changeid", "results", "branch",
          "buildrequestid", "workerid")


class EventRecorder(BuildbotService):
    name = "bench-events"

    def checkConfig(self, path: str = "") -> None:  # type: ignore[override]
        if not path:
            raise ValueError("EventRecorder needs path=")

    def reconfigService(self, path: str = "") -> Any:  # type: ignore[override]
        self.path = path
        return defer.succeed(None)

    @defer.inlineCallbacks
    def startService(self) -> Any:
        yield super().startService()
        self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (open for the service's life)
        self._consumers = []
        for topic in TOPICS:
            consumer = yield self.master.mq.startConsuming(self._record, topic)
            self._consumers.append(consumer)

    def _record(self, key: tuple[str, ...], msg: dict[str, Any]) -> None:
        row = {"t": time.time(), "key": [str(k) for k in key], **{k: msg.get(k) for k in FIELDS if k in msg}}
        self._out.write(json.dumps(row, default=str) + "\n")
        self._out.flush()

    @defer.inlineCallbacks
    def stopService(self) -> Any:
        for consumer in getattr(self, "_consumers", []):
            consumer.stopConsuming()
        if hasattr(self, "_out"):
            self._out.close()
        yield super().stopService()


def read_events(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
