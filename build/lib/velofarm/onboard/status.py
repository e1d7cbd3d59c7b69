"""What each worker is doing, from the master's REST API (for `velofarm worker list`)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from velofarm.spec.farm import Spec

Fetch = Callable[[str], Any]


@dataclass(frozen=True)
class WorkerState:
    name: str
    platforms: tuple[str, ...]
    source: str
    connected: bool | None  # None: the master did not answer
    last_seen: str
    current: str


def rest_fetcher(base_url: str, timeout: float = 10) -> Fetch:
    """GET one REST API v2 path of the master at `base_url` and decode its JSON."""
    def fetch(path: str) -> Any:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/api/v2/{path}", timeout=timeout) as resp:
            return json.load(resp)
    return fetch


def worker_states(spec: Spec, fetch: Fetch) -> tuple[list[WorkerState], str]:
    """Every worker of the spec with its state, and '' or why the master could not be asked."""
    try:
        known = {w["name"]: w for w in fetch("workers")["workers"]}
        running = fetch("builds?complete=false")["builds"]
        builders = {b["builderid"]: b["name"] for b in fetch("builders")["builders"]}
    except (OSError, ValueError, KeyError) as exc:
        why = (f"the master at {spec.master.url} did not answer ({exc}); is it running? "
               "(check [master] url in farm.toml)")
        unknown = [WorkerState(w.name, w.platforms, w.source, None, "?", "?") for w in spec.workers.values()]
        return unknown, why
    result = []
    for w in spec.workers.values():
        row = known.get(w.name)
        connected = bool(row and row["connected_to"])
        wid = row["workerid"] if row else None
        current = [f"{builders.get(b['builderid'], '?')} #{b['number']}"
                   for b in running if b["workerid"] == wid]
        result.append(WorkerState(w.name, w.platforms, w.source, connected,
                                  "now" if connected else _last_build_time(fetch, wid),
                                  ", ".join(current) or "-"))
    return result, ""


def _last_build_time(fetch: Fetch, workerid: int | None) -> str:
    # Buildbot keeps no connection times; a worker's latest build is the last sign of it.
    if workerid is None:
        return "never"
    builds = fetch(f"builds?workerid={workerid}&order=-buildid&limit=1")["builds"]
    if not builds:
        return "never (no build yet)"
    stamp = builds[0].get("complete_at") or builds[0].get("started_at")
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(stamp)) + " (last build)"


def render_table(states: list[WorkerState]) -> str:
    """A plain-text table, one worker per line."""
    rows = [("WORKER", "PLATFORMS", "CONNECTED", "LAST SEEN", "CURRENT BUILD", "DECLARED IN")]
    for s in states:
        connected = "?" if s.connected is None else ("yes" if s.connected else "no")
        rows.append((s.name, ",".join(s.platforms), connected, s.last_seen, s.current, s.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows)

