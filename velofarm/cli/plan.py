"""`velofarm plan TAG`: what a release of TAG would do, before anything is pushed or started."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from velofarm.release.plan import Plan


def _connected(state: bool | None) -> str:
    return "connection unknown" if state is None else ("connected" if state else "not connected")


def render_plan(plan: Plan, master_note: str) -> str:
    """The plan as a person reads it: one fact per line, then the notes' opening."""
    lines = [f"plan for {plan.tag} from {plan.repo}", f"  tag        {plan.tag_rule}"]
    if not plan.commit:
        return "\n".join(lines) + "\n"
    where = (f"HEAD {plan.commit[:12]}: tag {plan.tag} does not exist yet, so this plans from HEAD; "
             f"push the tag to release" if plan.from_head else f"{plan.commit[:12]} (tag {plan.tag})")
    lines.append(f"  commit     {where}")
    same = "=" if plan.cargo_version == plan.tag_version else "differs from"
    lines.append(f"  version    Cargo.toml {plan.cargo_version} {same} tag {plan.tag_version}")
    current = f"the latest now is {plan.highest_final}" if plan.highest_final else "no final release yet"
    kind = "pre-release, not marked latest" if plan.prerelease else (
        "final release, marked latest" if plan.latest else "final release, not marked latest (older)")
    if plan.publisher == "gitea" and not plan.prerelease and not plan.latest:  # Gitea has no make_latest
        kind = "final release, older, yet Gitea shows it as latest once published (newest published final)"
    lines.append(f"  kind       {kind}; {current}")
    lines.append(f"  platforms  {len(plan.platforms)}" + (f" ({master_note})" if master_note else ""))
    width = max((len(p.name) for p in plan.platforms), default=0)
    archive_width = max((len(p.archive) for p in plan.platforms), default=0)
    for p in plan.platforms:
        workers = ", ".join(f"{w} ({_connected(c)})" for w, c in p.workers)
        lines.append(f"    {p.name.ljust(width)}  {p.archive.ljust(archive_width)}  on {workers}")
    lines.append(f"  publish    {plan.publisher}: {plan.destination}")
    if plan.notes:
        lines += ["", "--- RELEASE_NOTES.md would open with (install steps and checksums follow once "
                  "the archives are built):", "", plan.notes.rstrip("\n"), "---"]
    return "\n".join(lines) + "\n"


def _default_repo(spec: Any) -> str:
    # In a checkout of the project (it holds the manifest), plan from it; elsewhere, from git_url.
    top = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode == 0 and (Path(top.stdout.strip()) / spec.project.manifest).is_file():
        return top.stdout.strip()
    return str(spec.repo_url)


def _worker_connections(spec: Any, url: str | None, ask: bool) -> tuple[dict[str, bool | None], str]:
    if not ask:
        return {}, "not asking a master (--no-master)"
    from velofarm.onboard.status import rest_fetcher, worker_states
    states, problem = worker_states(spec, rest_fetcher(url or spec.master.url, timeout=5))
    if problem:
        return {}, f"connections unknown: {problem}"
    return {s.name: s.connected for s in states}, ""


def cmd_plan(args: argparse.Namespace) -> int:
    from velofarm.release.history import open_history
    from velofarm.release.plan import make_plan
    from velofarm.spec.farm import load_spec
    spec = load_spec(args.spec)
    with tempfile.TemporaryDirectory(prefix="velofarm-plan-") as cache:
        history = open_history(args.repo or _default_repo(spec), Path(cache))
        connected, note = _worker_connections(spec, args.url, not args.no_master)
        plan = make_plan(spec, history, args.tag, connected)
    print(render_plan(plan, note), end="")
    if plan.would_start:
        print(f"result: a release of {plan.tag} would start" + (" once the tag is pushed" if plan.from_head else ""))
        return 0
    for problem in plan.problems:
        print(f"error: {problem}", file=sys.stderr)
    print(f"result: no release of {plan.tag} would start ({len(plan.problems)} problem(s) above)", file=sys.stderr)
    return 1


def register(sub: Any) -> None:
    """Add `velofarm plan` to the velofarm parser."""
    help = "show what a release of TAG would do (nothing is started; works before the tag exists)"
    p = sub.add_parser("plan", help=help, description=help)
    p.set_defaults(func=cmd_plan)
    p.add_argument("tag")
    p.add_argument("--spec", default="farm.toml", help="the farm spec (default: ./farm.toml)")
    p.add_argument("--repo", help="the project's checkout or git URL (default: the checkout you are in, "
                   "when it holds the manifest; else [project] git_url)")
    p.add_argument("--url", help="the master's web URL, to show which workers are connected "
                   "(default: [master] url)")
    p.add_argument("--no-master", action="store_true", help="do not ask a master which workers are connected")
