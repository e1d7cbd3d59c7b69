"""`velofarm check --list`: the farm as it will run, from the spec and the Buildbot layer's names.

Each platform -> its builder -> the workers serving it (max builds each), the release coordinator,
and the schedulers with what they trigger. Nothing is started: velofarm.buildmaster.farmplan is
plain data (the same names config.py gives Buildbot).
"""

from __future__ import annotations

from collections.abc import Sequence

from velofarm.buildmaster.farmplan import BuilderPlan, builder_plans, scheduler_plans, tag_sources
from velofarm.spec.farm import Spec


def table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return ["  " + "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
            for row in [header, *rows]]


def workers_cell(plan: BuilderPlan) -> str:
    # Never empty: the spec refuses a platform no worker serves.
    return ", ".join(f"{name} (max {max_builds})" for name, max_builds in plan.workers)


def farm_listing(spec: Spec) -> str:
    plans = builder_plans(spec)
    platform_rows = [(p.platform or "-", p.name, p.what, workers_cell(p)) for p in plans]
    scheduler_rows = [(s.name, s.kind, ", ".join(s.triggers), s.started_by) for s in scheduler_plans(spec)]
    lines = [f"{spec.path.name}: {spec.project.name}: {len(spec.platforms)} platforms, "
             f"{len(spec.workers)} workers, publisher {spec.release.publisher}",
             f"Release tags match {spec.release.tag_pattern} (release.tag_pattern)",
             f"Tags come from: {', '.join(tag_sources(spec))}", "",
             "Builders (platform -> builder -> workers):",
             *table(("PLATFORM", "BUILDER", "BUILDS", "WORKERS (MAX BUILDS EACH)"), platform_rows), "",
             "Schedulers:",
             *table(("SCHEDULER", "TYPE", "TRIGGERS", "STARTED BY"), scheduler_rows)]
    return "\n".join(lines) + "\n"
