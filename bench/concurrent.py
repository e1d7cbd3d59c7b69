"""Five tags released at once on a farm with 20 connected workers, against one release alone.

The farm (bench.workers20.start_velofarm): velofarm's own config, linux-x86_64 and
windows-x86_64-gnu, 10 real workers each. First one tag is released alone (the baseline), then
five tags, each on its own version commit, go out in one push. Wall time: the push to the last
release published. The master's RSS is sampled every 20 ms throughout; its CPU seconds (its own,
and those of the processes it ran, such as the assembler) are read from /proc before and after.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bench.farms import Timeline, bump, push_tags, wait_releases
from bench.transfer import RssSampler
from velofarm.cli.localfarm import LocalFarm

TAGS = 5


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own user + system CPU seconds, its waited-for children's), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / tick, (cutime + cstime) / tick


def published_at(farm: LocalFarm, build: dict[str, Any]) -> float:
    tl = Timeline(farm)
    publish = tl.step(build["buildid"], "publish")
    return publish[1] if publish else tl.build_span(build["buildid"])[1]


def release_tags(farm: LocalFarm, pid: int, tags: list[str]) -> dict[str, Any]:
    for tag in tags:
        bump(farm, tag)
    own0, kids0 = cpu_seconds(pid)
    with RssSampler(pid) as rss:
        pushed = push_tags(farm, *tags)
        builds = wait_releases(farm, tags, pushed, timeout=300 + 240 * len(tags))
    own1, kids1 = cpu_seconds(pid)
    ok = [t for t, b in builds.items() if b["results"] == 0]
    last = max(published_at(farm, b) for b in builds.values())
    return {"wall_s": last - pushed, "completed": len(ok), "tags": len(tags),
            "failed": {t: b["state_string"] for t, b in builds.items() if b["results"] != 0},
            "rss_peak_mib": max(rss.samples), "rss_start_mib": rss.samples[0],
            "cpu_s": own1 - own0, "children_cpu_s": kids1 - kids0}


def measure(farm: LocalFarm, pid: int, emit: Any) -> dict[str, Any]:
    one = release_tags(farm, pid, ["v1.0.0"])
    emit(f"  one release alone: {one['wall_s']:.1f} s, master CPU {one['cpu_s']:.1f} s "
         f"(+{one['children_cpu_s']:.1f} s in its child processes), RSS peak {one['rss_peak_mib']:.0f} MiB")
    five = release_tags(farm, pid, [f"v2.0.{i}" for i in range(TAGS)])
    emit(f"  {TAGS} at once: {five['completed']} of {TAGS} released in {five['wall_s']:.1f} s, master CPU "
         f"{five['cpu_s'] / TAGS:.1f} s a release (+{five['children_cpu_s'] / TAGS:.1f} s in child processes), "
         f"RSS peak {five['rss_peak_mib']:.0f} MiB")
    return {"one": one, "five": five}
