#!/usr/bin/env python3
"""Gates after one platform's build: each binary's smoke command, then the size limit.

Standard library only, Python 3.9+: the master sends it to each worker in the tools bundle and
runs it with the worker's own Python, in the checked-out source tree, after the build (preflight.py runs the checks before it). Also importable
(`from velofarm.worker_tools import gates`).

    gates.py smoke JOB --tag TAG --bin-dir DIR
    gates.py size JOB --tag TAG --bin-dir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOB_FORMAT = 1
JOB_MEMBER = "job.json"  # inside the tools bundle
SMOKE_TIMEOUT = 60  # seconds; a --version that takes longer is broken (Wine's first start fits)


class GateError(Exception):
    """An expected failure; the message names the tag, platform and binary, and the fix."""


@dataclass(frozen=True)
class SmokeResult:
    """One binary's smoke run; `argv` is empty when it was not run."""

    binary: str
    ok: bool
    note: str
    argv: list[str] = field(default_factory=list)
    output: str = ""


def load_job(path: str | Path) -> dict[str, Any]:
    """The job JSON the master wrote for this build, from a job.json or from the tools bundle that
    carries one (velofarm/spec/toolbundle.py); GateError if unreadable or of another format."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                text = bundle.read(JOB_MEMBER).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        job = json.loads(text)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise GateError(f"job file {path} cannot be read ({exc}); re-run the build so the master "
                        "writes it again") from None
    if not isinstance(job, dict) or job.get("format") != JOB_FORMAT or "platform" not in job:
        raise GateError(f"job file {path} is not job format {JOB_FORMAT}; the master and this script "
                        "come from different velofarm versions: restart the master, then rebuild")
    return job


def _ctx(job: dict[str, Any], tag: str) -> str:
    return f"tag {tag}, platform {job['platform']['name']}"


def tag_version(tag: str, platform_name: str) -> str:
    """The version a `v<semver>` tag stands for (the version check before the build checked the
    tag's form): no leading 'v', no `+build` metadata."""
    if not tag.startswith("v") or len(tag) < 2:
        raise GateError(f"tag {tag} is not 'v' followed by a semantic version (platform {platform_name}); "
                        "push a tag of that form")
    return tag[1:].split("+", 1)[0]


# -------------------------------------------------------------------------------- smoke, size

def version_in_output(version: str, output: str) -> bool:
    """Whether `version` appears as a whole version (0.1.0 is not in 10.1.0 or 0.1.0-rc.1)."""
    pattern = r"(?<![0-9.])" + re.escape(version) + r"(?![0-9]|[.-][0-9A-Za-z])"
    return re.search(pattern, output) is not None


def smoke_test(job: dict[str, Any], tag: str, bin_dir: str | Path) -> list[SmokeResult]:
    """Run each binary's declared smoke command; each must exit 0 and print the tag's version."""
    platform = job["platform"]
    version = tag_version(tag, platform["name"])
    runner = list(platform.get("runner") or [])
    env = dict(os.environ)
    if any("wine" in part.lower() for part in runner):
        env["WINEDEBUG"] = "-all"  # Wine's fixme chatter would bury the binary's own output
    results = []
    for binary in job["binaries"]:
        fname = binary["name"] + (platform.get("exe_suffix") or "")
        path = Path(bin_dir).resolve() / fname
        if not path.is_file():
            results.append(SmokeResult(fname, False, f"missing from {path.parent}"))
        elif not binary.get("smoke"):  # null (or []) in the job: never run it bare
            results.append(SmokeResult(fname, True, "not run (declared unsafe to run bare)"))
        else:
            results.append(_smoke_one(fname, runner + [str(path)] + list(binary["smoke"]), version, env))
    return results


def _smoke_one(fname: str, argv: list[str], version: str, env: dict[str, str]) -> SmokeResult:
    # Output goes to a file, not a pipe: a daemon the runner starts (wineserver) could hold a
    # pipe open past the timeout. An empty scratch folder keeps stray writes out of the tree.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryDirectory() as scratch:
        try:
            code: int | None = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL, stdout=out,
                                              stderr=subprocess.STDOUT, env=env, cwd=scratch,
                                              timeout=SMOKE_TIMEOUT).returncode
            note = f"exit {code}"
        except subprocess.TimeoutExpired:
            code, note = None, f"did not finish within {SMOKE_TIMEOUT} s"
        except OSError as exc:
            code, note = None, f"could not be started ({exc})"
        out.seek(0)
        output = out.read().decode("utf-8", "replace")
    if code == 0 and not version_in_output(version, output):
        return SmokeResult(fname, False, f"exit 0 but printed no version {version}", argv, output)
    return SmokeResult(fname, code == 0, f"ok, printed {version}" if code == 0 else note, argv, output)


def binary_sizes(job: dict[str, Any], tag: str, bin_dir: str | Path) -> list[tuple[str, int]]:
    """(file name, bytes) of every declared binary; GateError when one is missing."""
    suffix = job["platform"].get("exe_suffix") or ""
    sizes = []
    for binary in job["binaries"]:
        path = Path(bin_dir) / (binary["name"] + suffix)
        if not path.is_file():
            raise GateError(f"{_ctx(job, tag)}: binary {path.name} is missing from {path.parent}; "
                                 "check the build step's log")
        sizes.append((path.name, path.stat().st_size))
    return sizes


def size_problem(job: dict[str, Any], tag: str, sizes: list[tuple[str, int]]) -> str | None:
    """The error for the binaries over the platform's size limit, or None when all fit."""
    platform = job["platform"]
    limit = platform["size_limit_bytes"]
    over = [f"{name} is {_mb(size)} MB" for name, size in sizes if size > limit]
    if not over:
        return None
    return (f"{_ctx(job, tag)}: {', '.join(over)}, over the {_mb(limit)} MB limit; shrink the binary "
            f"or raise platforms.{platform['name']}.size_limit_mb in farm.toml")


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".removesuffix(".0")


def print_summary(text: str) -> None:
    """The step's one-line summary in the UI: the build step shows the last `summary:` line."""
    print(f"summary: {text}", flush=True)


def smoke_summary(version: str, results: list[SmokeResult]) -> str:
    """'smoke: 5 binaries print 0.1.0' or the first failure."""
    failed = [r for r in results if not r.ok]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"smoke failed: {failed[0].binary} {failed[0].note}{more}"
    ran = sum(1 for r in results if r.argv)
    skipped = len(results) - ran
    return f"smoke: {ran} binar{'y prints' if ran == 1 else 'ies print'} {version}" + (
        f", {skipped} not run (declared unsafe)" if skipped else "")


def size_summary(sizes: list[tuple[str, int]], limit: int) -> str:
    """'8 binaries, largest velo-sql 2.1 MiB of 30 MiB' or the binaries over the limit."""
    over = [f"{name} {_mb(size)} MiB" for name, size in sizes if size > limit]
    if over:
        return f"{', '.join(over)} over the {_mb(limit)} MiB limit"
    name, size = max(sizes, key=lambda item: item[1]) if sizes else ("none", 0)
    return f"{len(sizes)} binar{'y' if len(sizes) == 1 else 'ies'}, largest {name} {_mb(size)} MiB of {_mb(limit)} MiB"


# ---------------------------------------------------------------------------------------- CLI

def _cmd_smoke(args: argparse.Namespace) -> int:
    job = load_job(args.job)
    results = smoke_test(job, args.tag, args.bin_dir)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.binary}: {r.note}")
        if r.argv:
            print(f"     $ {' '.join(r.argv)}")
            print("".join(f"     | {line}\n" for line in r.output.splitlines()), end="")
    print_summary(smoke_summary(tag_version(args.tag, job["platform"]["name"]), results))
    failed = [f"{r.binary} ({r.note})" for r in results if not r.ok]
    if failed:
        raise GateError(f"{_ctx(job, args.tag)}: smoke test failed for {'; '.join(failed)}; see the "
                             "output above: fix the binary, or its smoke command in farm.toml "
                             "[project.binaries]")
    return 0


def _cmd_size(args: argparse.Namespace) -> int:
    job = load_job(args.job)
    sizes = binary_sizes(job, args.tag, args.bin_dir)
    limit = job["platform"]["size_limit_bytes"]
    print(f"{'binary':<40} {'size':>10}  (limit {_mb(limit)} MB, platform {job['platform']['name']})")
    for name, size in sizes:
        print(f"{name:<40} {_mb(size):>7} MB{'  OVER' if size > limit else ''}")
    print_summary(size_summary(sizes, limit))
    problem = size_problem(job, args.tag, sizes)
    if problem:
        raise GateError(problem)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gates.py", description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in [("smoke", _cmd_smoke, "run each binary's smoke command"),
                             ("size", _cmd_size, "check binary sizes against the platform limit")]:
        p = sub.add_parser(name, help=text)
        p.add_argument("job")
        p.add_argument("--tag", required=True)
        p.add_argument("--bin-dir", required=True)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one gate; expected failures print one `error: ` line and return 1."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except GateError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        print(f"error: gates.py {args.command} (tag {args.tag}): {exc}; check the worker's disk and "
              "permissions, then rebuild", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
