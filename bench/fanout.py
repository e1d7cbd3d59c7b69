"""Fan-out: how far apart one tag's platform builds start, and how soon the coordinator goes on.

A coordinator on the master's LocalWorker triggers N children that each `sleep`. Stamp steps
record when each child's first step runs (its start), when it ends, and when the coordinator
resumes; EventRecorder's "builds new" times give the build records' spread too. velofarm: ReleaseTrigger
(the release builder's step); baseline: Buildbot's own Trigger. Same master, same workers.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.events import read_events
from bench.lab import Lab
from bench.procs import api, force, prop, wait_build
from bench.stats import repeat


def fan_once(lab: Lab, kind: str, tag: str, children: int) -> dict[str, float]:
    brid = force(lab.www_port, "force", f"fan-parent-{kind}", tag=tag)
    parent = wait_build(lab.www_port, brid, timeout=120, events=lab.root / "master" / "events.jsonl")
    created = {e["buildid"]: e["t"] for e in read_events(str(lab.root / "master" / "events.jsonl"))
               if e["key"][0] == "builds" and e["key"][-1] == "new"}
    starts, steps, ends = [], [], []
    for i in range(1, children + 1):
        found = api(lab.www_port, f"builders/fan-child-{i}/builds?order=-number&limit=1&property=*")["builds"]
        child = found[0]
        if prop(child, "tag") != tag:
            raise RuntimeError(f"fan-child-{i}: latest build is for {prop(child, 'tag')}, not {tag}")
        starts.append(float(created[child["buildid"]]))
        steps.append(float(prop(child, "t_c0")))
        ends.append(float(prop(child, "t_c1")))
    p0, p1 = float(prop(parent, "t_p0")), float(prop(parent, "t_p1"))
    return {"spread": max(starts) - min(starts), "first_step_spread": max(steps) - min(steps),
            "first": min(starts) - p0, "continue": p1 - max(ends),
            "added": (p1 - p0) - (max(ends) - min(steps))}


def measure(lab: Lab, reps: int, children: int, emit: Any, deadline: float) -> dict[str, Any]:
    """Medians over up to `reps` runs of each coordinator (as many as fit before `deadline`),
    alternating so that load drifts hit both alike; `<kind>_all` keeps every run."""
    kinds = ("velofarm", "plain")
    for kind in kinds:
        fan_once(lab, kind, f"warm-{kind}", children)  # warm-up
    done = repeat(lambda i: {kind: fan_once(lab, kind, f"f-{kind}-{i}", children) for kind in kinds}, reps, deadline)
    runs = {kind: [d[kind] for d in done] for kind in kinds}
    out: dict[str, Any] = {}
    for kind in kinds:
        med = {k: statistics.median(r[k] for r in runs[kind]) for k in runs[kind][0]}
        out[kind] = med
        out[f"{kind}_all"] = runs[kind]
        emit(f"  {kind}: children start {med['spread']:.3f} s apart (first steps "
             f"{med['first_step_spread']:.3f} s), the first {med['first']:.3f} s after the trigger; "
             f"the coordinator resumes {med['continue']:.3f} s after the last ends")
    return out
