"""`velofarm doctor`: what each platform's build needs on this machine, and how to install it.

One implementation: the checks are preflight.check_toolchain, the lines are Check.line and the
verdict is the toolchain step's own, so the doctor and a failing build say the same thing.
"""

from __future__ import annotations

import platform as host
from collections.abc import Callable
from dataclasses import dataclass

from velofarm.errors import SpecError
from velofarm.spec.farm import Spec
from velofarm.spec.platforms import Platform, suggest
from velofarm.worker_tools import preflight

SYSTEMS = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}


@dataclass(frozen=True)
class Report:
    platform: Platform
    checks: list[preflight.Check]

    @property
    def missing(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def text(self, node: str) -> str:
        """The same lines the toolchain part of the build's "preflight" step prints (and its error, when one is missing)."""
        p = self.platform
        lines = [f"toolchain for platform {p.name} (target {p.target}, method {p.method}) on {node}:"]
        lines += [c.line() for c in self.checks]
        if self.missing:
            lines.append(f"error: platform {p.name}: worker {node} lacks {', '.join(self.missing)}; "
                         "run the fix commands above on it, then rebuild")
        return "\n".join(lines)


def host_os() -> str:
    """linux, macos or windows for this machine ('' when it is none of those)."""
    return SYSTEMS.get(host.system(), "")


def select_platforms(spec: Spec, names: list[str], worker: str | None, system: str) -> list[Platform]:
    """--platform names, else the worker's platforms, else every platform that builds on `system`."""
    if names:
        for name in names:
            if name not in spec.platforms:
                raise SpecError(f"--platform '{name}': not a platform of {spec.path.name}"
                                f"{suggest(name, sorted(spec.platforms))}; "
                                f"platforms: {', '.join(spec.platforms)}")
        return [spec.platforms[n] for n in names]
    if worker:
        if worker not in spec.workers:
            raise SpecError(f"--worker '{worker}': no such worker{suggest(worker, sorted(spec.workers))}; "
                            f"workers: {', '.join(spec.workers)}")
        return [spec.platforms[p] for p in spec.workers[worker].platforms]
    found = [p for p in spec.platforms.values() if p.os == system]
    if not found:
        raise SpecError(f"no platform of {spec.path.name} builds on {system or host.system()}; "
                        "name one with --platform")
    return found


def diagnose(spec: Spec, platforms: list[Platform],
             check: Callable[..., list[preflight.Check]] = preflight.check_toolchain) -> list[Report]:
    """Run each platform's toolchain checks here."""
    return [Report(p, check(p.to_json(), spec.project.needs_protoc)) for p in platforms]


def render(reports: list[Report], node: str | None = None) -> str:
    """Every report, then a one-line summary."""
    node = node or host.node()
    parts = [r.text(node) for r in reports]
    lacking = [r.platform.name for r in reports if r.missing]
    if lacking:
        parts.append(f"doctor: {len(lacking)} of {len(reports)} platforms lack something here "
                     f"({', '.join(lacking)}); run the fix commands above")
    else:
        names = ", ".join(r.platform.name for r in reports)
        parts.append(f"doctor: ok: every toolchain item is here for {names}")
    return "\n\n".join(parts)
