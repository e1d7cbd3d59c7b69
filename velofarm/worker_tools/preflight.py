#!/usr/bin/env python3
"""Checks before one platform's build: version vs tag, toolchain, commit time, build environment.

Standard library only, Python 3.9+: the master sends it to each worker in the tools bundle and
runs it with the worker's own Python, in the checked-out source tree; gates.py runs the checks
after the build (smoke, size). Also importable (`from velofarm.worker_tools import preflight`;
`velofarm doctor` reuses check_toolchain, the master reuses build_env).

    preflight.py check JOB --tag TAG        all four in one call: the build's preflight step
    preflight.py toolchain JOB [--tag TAG]  the toolchain alone (a new worker's onboarding check)
"""

from __future__ import annotations

import argparse
import json
import ntpath
import os
import platform as host
import posixpath
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

try:
    import tomllib
except ImportError:  # Python < 3.11: _regex_version reads the one field needed
    tomllib = None  # type: ignore[assignment]

JOB_FORMAT = 1
JOB_MEMBER = "job.json"  # inside the tools bundle
DOCKER_TIMEOUT = 10
PROPERTIES = "properties: "  # the line whose JSON the build step sets as properties
RUSTC_TIMEOUT = 120  # rustup may install a rust-toolchain.toml toolchain on first use
SEMVER_TAG = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
PROTOC_FIX = {"linux": "apt-get install protobuf-compiler", "macos": "brew install protobuf",
              "windows": "choco install protoc"}


class PreflightError(Exception):
    """An expected failure; the message names the tag, platform and file, and the fix."""


@dataclass(frozen=True)
class Check:
    """One toolchain item: present (`ok`) or not, what was found, and the command that fixes it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    program: str = ""  # what was looked for, as the step summary names it

    def line(self) -> str:
        if self.ok:
            return f"ok   {self.name} {self.detail}"
        return f"MISSING {self.name} {self.detail} -> fix: {self.fix}"


def load_job(path: str | Path) -> dict[str, Any]:
    """The job JSON the master wrote for this build, from a job.json or from the tools bundle that
    carries one (velofarm/spec/toolbundle.py); PreflightError if unreadable or of another format."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as bundle:
                text = bundle.read(JOB_MEMBER).decode("utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        job = json.loads(text)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise PreflightError(f"job file {path} cannot be read ({exc}); re-run the build so the master "
                             "writes it again") from None
    if not isinstance(job, dict) or job.get("format") != JOB_FORMAT or "platform" not in job:
        raise PreflightError(f"job file {path} is not job format {JOB_FORMAT}; the master and this script "
                             "come from different velofarm versions: restart the master, then rebuild")
    return job


# ------------------------------------------------------------------------------------ version

def expected_version(tag: str, platform_name: str) -> str:
    """The Cargo version a `v<semver>` tag stands for: no leading 'v', no `+build` metadata."""
    if not SEMVER_TAG.match(tag):
        raise PreflightError(f"tag {tag} is not 'v' followed by a semantic version, e.g. v1.2.3 or "
                             f"v1.2.3-rc.1 (platform {platform_name}); push a tag of that form")
    return tag[1:].split("+", 1)[0]


def manifest_version(manifest: Path) -> str | None:
    """`[package] version` of a Cargo.toml (following `version.workspace = true` within the file)."""
    return version_in_manifest(manifest.read_text(encoding="utf-8"))


def version_in_manifest(text: str) -> str | None:
    """`[package] version` of a Cargo.toml's text (also read by `velofarm plan`)."""
    if tomllib is None:
        return _regex_version(text)
    data = tomllib.loads(text)
    version = data.get("package", {}).get("version")
    if isinstance(version, dict) and version.get("workspace"):
        version = data.get("workspace", {}).get("package", {}).get("version")
    return version if isinstance(version, str) else None


def _regex_version(text: str) -> str | None:
    # Enough TOML for `version = "..."` under [package] or [workspace.package].
    found: dict[str, str] = {}
    section: str | None = None
    for line in text.splitlines():
        header = re.match(r"\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$", line)
        if header or line.lstrip().startswith("["):
            section = header.group(1) if header else None  # [[bin]] and friends end [package]
            continue
        if section in ("package", "workspace.package") and section not in found:
            m = re.match(r'\s*version\s*=\s*"([^"]*)"', line)
            if m:
                found[section] = m.group(1)
            elif re.match(r"\s*version\s*(\.\s*workspace\s*=\s*true|=\s*\{\s*workspace\s*=\s*true)", line):
                found[section] = "<workspace>"
    version = found.get("package")
    return found.get("workspace.package") if version == "<workspace>" else version


def check_version(job: dict[str, Any], tag: str, source_dir: str | Path) -> str:
    """The version, when the manifest's `[package] version` is the tag's; else PreflightError."""
    name, manifest = job["platform"]["name"], job.get("manifest") or "Cargo.toml"
    expected = expected_version(tag, name)
    path = Path(source_dir).joinpath(*PurePosixPath(manifest).parts)
    try:
        found = manifest_version(path)
    except (OSError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise PreflightError(f"tag {tag}: {manifest} cannot be read ({exc}) (platform {name}); check "
                             "project.manifest in farm.toml and the checkout") from None
    if found is None:
        raise PreflightError(f"tag {tag}: {manifest} has no [package] version (platform {name}); add "
                             f'version = "{expected}" under [package]')
    if found != expected:
        raise PreflightError(f"tag {tag} expects version {expected} but {manifest} has version {found} "
                             f"(platform {name}); bump {manifest} or tag the right commit")
    return found


# ---------------------------------------------------------------------------------- toolchain

def check_toolchain(platform: dict[str, Any], needs_protoc: bool) -> list[Check]:
    """What this platform's build needs on this machine, each item present or with its fix."""
    checks: list[Check] = []
    if platform.get("method") == "cross":
        # cross brings the target, linker and (via Cross.toml) protoc inside its image.
        checks.append(_program("cross", "cross", platform.get("fix_cross") or "cargo install cross --locked"))
        checks.append(_container_engine(platform.get("fix_docker") or "install and start a Docker engine"))
    else:
        cargo = platform.get("cargo") or "cargo"
        checks.append(_program("cargo", cargo, _rust_fix(platform, cargo, "cargo")))
        # cargo runs $RUSTC when set, so that is the compiler whose target libraries count.
        rustc = (platform.get("env") or {}).get("RUSTC") or os.environ.get("RUSTC") or "rustc"
        rustc_check = _program("rustc", rustc, _rust_fix(platform, rustc, "env.RUSTC"))
        checks += [rustc_check, _target(platform, rustc if rustc_check.ok else None)]
        if platform.get("linker"):
            linker = platform["linker"]
            checks.append(_program("linker", linker, platform.get("fix_linker") or f"install {linker}"))
        if needs_protoc:
            fix = PROTOC_FIX.get(platform.get("os", ""), "install protoc (protobuf-compiler)")
            checks.append(_program("protoc", "protoc", fix))
    if platform.get("runner"):
        runner = platform["runner"][0]
        checks.append(_program("runner", runner, platform.get("fix_runner") or f"install {runner}"))
    return checks


def rustc_version(platform: dict[str, Any]) -> list[str]:
    """`rustc -vV` of the compiler cargo will run ($RUSTC when set); cross builds name their image instead."""
    if platform.get("method") == "cross":
        return ["(rustc inside the cross image; see the builder image digest)"]
    rustc = (platform.get("env") or {}).get("RUSTC") or os.environ.get("RUSTC") or "rustc"
    try:
        out = subprocess.run([rustc, "-vV"], capture_output=True, text=True, timeout=RUSTC_TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return [f"(failed: {exc})"]
    return out.stdout.splitlines() if out.returncode == 0 else [f"(failed: exit {out.returncode})"]


def _program(name: str, program: str, fix: str) -> Check:
    found = shutil.which(program)  # also checks a path with a folder in it directly
    where = "not found" if os.path.dirname(program) else "not on PATH"
    return Check(name, bool(found), f"{program} ({found or where})", fix, program)


def _rust_fix(platform: dict[str, Any], program: str, field_name: str) -> str:
    # An absolute compiler path means a system (Debian) toolchain, which fix_target installs.
    if os.path.isabs(program) and platform.get("fix_target"):
        return (f"{platform['fix_target']} (or set platforms.{platform['name']}.{field_name} in "
                "farm.toml to where it is installed)")
    return "install Rust from https://rustup.rs and put cargo and rustc on the worker's PATH"


def _target(platform: dict[str, Any], rustc: str | None) -> Check:
    target = platform["target"]
    fix = platform.get("fix_target") or f"rustup target add {target}"
    if rustc is None:
        return Check("target", False, f"{target} (no rustc to ask)", fix)
    env = {**os.environ, **(platform.get("env") or {})}
    try:  # the sysroot, not rustup, is the truth: Debian's /usr/bin/rustc has sysroot /usr
        result = subprocess.run([rustc, "--print", "sysroot"], check=False, stdin=subprocess.DEVNULL,
                                env=env, capture_output=True, text=True, timeout=RUSTC_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("target", False, f"{target} ({rustc} --print sysroot failed: {exc})", fix)
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return Check("target", False, f"{target} ({rustc} --print sysroot failed: {why})", fix)
    lib = Path(result.stdout.strip()) / "lib" / "rustlib" / target / "lib"
    return Check("target", lib.is_dir(), f"{target} ({lib if lib.is_dir() else f'no {lib}'})", fix)


def _container_engine(fix: str) -> Check:
    # A docker CLI alone is not enough: cross needs an engine that answers.
    engine = os.environ.get("CROSS_CONTAINER_ENGINE") or "docker"
    path = shutil.which(engine)
    if not path:
        return Check("docker", False, f"{engine} (not on PATH)", fix)
    try:
        code = subprocess.run([path, "info"], check=False, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=DOCKER_TIMEOUT).returncode
        why = f"`{engine} info` exited {code}: no running engine"
    except subprocess.TimeoutExpired:
        code, why = -1, f"`{engine} info` got no answer within {DOCKER_TIMEOUT} s"
    except OSError as exc:
        code, why = -1, f"`{engine} info` could not run: {exc}"
    return Check("docker", code == 0, f"{engine} engine ({path if code == 0 else why})", fix)


# -------------------------------------------------------------------------------------- build

def _is_abs(path: str) -> bool:
    # The master computes worker paths, and a Linux master may serve a Windows worker.
    return posixpath.isabs(path) or ntpath.isabs(path)


def build_env(platform: dict[str, Any], source_dir: str | Path, source_date_epoch: int,
              cargo_home: str | None = None) -> dict[str, str]:
    """Environment for the build: platform env, SOURCE_DATE_EPOCH, and path-remapping RUSTFLAGS.

    `source_dir` (and `cargo_home`) are absolute paths on the worker. Leave `cargo_home` None
    only when running on the worker: it then comes from $CARGO_HOME or ~/.cargo here.
    """
    source = str(source_dir)
    if cargo_home is None:
        cargo_home = os.environ.get("CARGO_HOME") or os.path.join(os.path.expanduser("~"), ".cargo")
    for path in (source, cargo_home):
        if not _is_abs(path):
            raise ValueError(f"build_env needs absolute worker paths, got {path!r}")
    # Remapping keeps the worker's folders out of panic messages and debug info, so two
    # workers build the same bytes. rustc applies the last matching remap: cargo home wins.
    flags = [f"--remap-path-prefix={source}=/build", f"--remap-path-prefix={cargo_home}=/cargo",
             *platform.get("rustflags", [])]
    env = dict(platform.get("env") or {})
    env["SOURCE_DATE_EPOCH"] = str(int(source_date_epoch))
    if any(any(c.isspace() for c in flag) for flag in flags):
        env["CARGO_ENCODED_RUSTFLAGS"] = "\x1f".join(flags)  # RUSTFLAGS would split a spaced path
    else:
        env["RUSTFLAGS"] = " ".join(flags)
    return env


# ---------------------------------------------------------------------------------------- CLI

def print_summary(text: str) -> None:
    """The step's one-line summary in the UI: the build step shows the last `summary:` line."""
    print(f"summary: {text}", flush=True)


def toolchain_summary(platform: dict[str, Any], checks: list[Check], rustc_vv: list[str] | None = None) -> str:
    """'toolchain ok (rustc 1.63.0, x86_64-w64-mingw32-gcc, wine64)' or 'missing linker x (fix: ...)';
    the compiler's name and version come from `rustc_vv` (rustc_version's lines)."""
    missing = [c for c in checks if not c.ok]
    if missing:
        first = missing[0]
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        return f"missing {first.name} {first.program or first.detail}{more} (fix: {first.fix})"
    tools = [os.path.basename(c.program) for c in checks if c.program and c.name not in ("cargo", "rustc")]
    named = rustc_vv[0].split()[:2] if rustc_vv and rustc_vv[0].startswith("rustc ") else []
    compiler = "cross" if platform.get("method") == "cross" else " ".join(named)
    return f"toolchain ok ({', '.join(part for part in [compiler, *tools] if part)})"


def _report_version(job: dict[str, Any], tag: str) -> str:
    version = check_version(job, tag, Path.cwd())
    print(f"ok: tag {tag} matches {job.get('manifest') or 'Cargo.toml'} version {version} "
          f"(platform {job['platform']['name']})")
    return f"version {version} = tag {tag}"


def _report_toolchain(job: dict[str, Any], tag: str | None) -> str:
    """Print each check; PreflightError (after the summary naming the first gap) when one is missing."""
    platform = job["platform"]
    print(f"toolchain for platform {platform['name']} (target {platform['target']}, method "
          f"{platform.get('method', 'cargo')}) on {host.node()}:")
    checks = check_toolchain(platform, bool(job.get("needs_protoc")))
    for check in checks:
        print(check.line())
    missing = [c.name for c in checks if not c.ok]
    if missing:
        print_summary(toolchain_summary(platform, checks))
        raise PreflightError(f"{f'tag {tag}, ' if tag else ''}platform {platform['name']}: worker {host.node()} "
                             f"lacks {', '.join(missing)}; run the fix commands above on it, then rebuild")
    # The master records this output as the worker's toolchain for the release's provenance.
    rustc_vv = rustc_version(platform)
    for line in rustc_vv:
        print(f"rustc -vV: {line}")
    return toolchain_summary(platform, checks, rustc_vv)


def commit_time(source_dir: str | Path, tag: str) -> int:
    """The checked-out commit's committer time (git log -1 --format=%ct): the build's SOURCE_DATE_EPOCH."""
    try:
        done = subprocess.run(["git", "log", "-1", "--format=%ct", "HEAD"], cwd=source_dir, capture_output=True,
                              text=True, stdin=subprocess.DEVNULL, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PreflightError(f"tag {tag}: git log in {source_dir} failed ({exc}); put git on the worker's "
                             "PATH (the checkout step uses it too)") from None
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise PreflightError(f"tag {tag}: {source_dir} has no readable commit time ({why}); check the "
                             "checkout step")
    return int(done.stdout.strip())


def _cmd_toolchain(args: argparse.Namespace) -> int:
    print_summary(_report_toolchain(load_job(args.job), args.tag))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    """The build's one preflight call: version, toolchain, commit time, build environment; the last
    two as a `properties:` line the master's step sets as build properties."""
    job = load_job(args.job)
    print("== version")
    outcomes = [_report_version(job, args.tag)]
    print("== toolchain")
    outcomes.append(_report_toolchain(job, None))  # its error reads as `velofarm doctor`'s, word for word
    print("== commit time")
    epoch = commit_time(Path.cwd(), args.tag)
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    print(f"SOURCE_DATE_EPOCH {epoch} ({when}): the checked-out commit's time")
    outcomes.append(f"commit time {when}")
    print("== build environment")
    env = build_env(job["platform"], Path.cwd(), epoch)
    for name, value in sorted(env.items()):
        print(f"{name}={value!r}")
    outcomes.append(f"build env ({len(env)} variables)")
    print(PROPERTIES + json.dumps({"source_date_epoch": epoch, "build_env": env}, sort_keys=True))
    print_summary("; ".join(outcomes))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="preflight.py", description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    commands = [("check", _cmd_check, "every check before the build, and its environment", True),
                ("toolchain", _cmd_toolchain, "check this machine has what the build needs", False)]
    for name, func, text, tag_required in commands:
        p = sub.add_parser(name, help=text)
        p.add_argument("job", help="the job.json, or the tools bundle that carries it")
        p.add_argument("--tag", required=tag_required)
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; expected failures print one `error: ` line and return 1."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PreflightError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:
        tag = f" (tag {args.tag})" if getattr(args, "tag", None) else ""
        print(f"error: preflight.py {args.command}{tag}: {exc}; check the worker's disk and "
              "permissions, then rebuild", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
