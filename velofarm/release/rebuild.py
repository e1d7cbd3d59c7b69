"""Rebuild a released tag on this machine and compare each archive with the published one.

Pure: no Buildbot. The same steps a worker runs (buildmaster/factories.py platform_factory), by
running the same tools bundle with the same arguments: preflight (version, toolchain, the tag's
commit time as SOURCE_DATE_EPOCH, the build environment with the source folder and cargo home
remapped, so the folder this runs in does not reach the binaries), the cargo command, smoke and
size gates, stage, archive. `velofarm verify --rebuild TAG` calls `rebuild`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velofarm.errors import ReleaseError
from velofarm.release.reproduce import first_difference
from velofarm.spec.farm import Spec
from velofarm.spec.job import archive_name, build_argv, build_job, stage_name
from velofarm.spec.platforms import Platform
from velofarm.spec.toolbundle import write_bundle
from velofarm.worker_tools import pack, preflight

GIT_TIMEOUT = 600
MATCH, DIFFERS, SKIPPED, FAILED = "match", "differs", "skipped", "failed"


@dataclass(frozen=True)
class PlatformResult:
    platform: str
    outcome: str  # MATCH, DIFFERS, SKIPPED or FAILED
    detail: str  # what a person reads after the outcome

    def line(self) -> str:
        return f"{self.platform}: {self.outcome}: {self.detail}"


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=GIT_TIMEOUT,
                          stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise ReleaseError(f"git {' '.join(args)}: {why}")
    return done.stdout.strip()


def checkout_release(repo: str, tag: str, commit: str, dest: Path) -> None:
    """Clone `repo` into `dest` and check out `commit`; refuse when `tag` no longer points at it."""
    _git("clone", "--quiet", "--no-checkout", repo, str(dest))
    try:
        tagged = _git("rev-parse", "--verify", f"refs/tags/{tag}^{{commit}}", cwd=dest)
    except ReleaseError:
        raise ReleaseError(f"tag {tag}: not in {repo}; pass the project's repository with --repo URL|PATH") from None
    if tagged != commit:
        raise ReleaseError(f"tag {tag} now points at {tagged} in {repo}, but release.json says the release was "
                           f"built from {commit}: the tag was moved, so this is not a rebuild of the release")
    _git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit, cwd=dest)


def published_digest(entry: dict[str, Any]) -> tuple[str, str]:
    """The digest a local (unsigned) rebuild must have, and what it is. Authenticode-signed
    archives were repacked on the master after signing: compare the unsigned digest it recorded."""
    for build in entry.get("builds") or []:
        signed = build.get("authenticode") or {}
        if signed.get("unsigned_sha256"):
            return str(signed["unsigned_sha256"]), "signed on the master: compared the unsigned archive's digest"
    return str(entry["sha256"]), "the published archive"


def compare_archive(entry: dict[str, Any], published: Path, rebuilt: Path) -> PlatformResult:
    """MATCH when the rebuilt archive has the published digest; else DIFFERS, naming the first difference."""
    want, what = published_digest(entry)
    got = pack.sha256_file(rebuilt)
    if got == want:
        return PlatformResult(entry["name"], MATCH, f"{rebuilt.name} SHA-256 {got} ({what})")
    where = first_difference(published, rebuilt) if published.is_file() else f"{published.name} is missing"
    if what != "the published archive":
        where += " (the published .exe files also carry their Authenticode signature)"
    return PlatformResult(entry["name"], DIFFERS, f"{rebuilt.name} SHA-256 {got}, {what} has {want}; "
                          f"first difference (published / rebuilt): {where}")


class _StepFailed(Exception):
    pass


def _run_step(name: str, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-5:])
        raise _StepFailed(f"step '{name}' failed (exit {done.returncode}): {tail}")
    return done.stdout


def missing_tools(spec: Spec, platform: Platform) -> str | None:
    """Why this host cannot build the platform (preflight's toolchain check), or None."""
    checks = preflight.check_toolchain(platform.to_json(), spec.project.needs_protoc)
    missing = [c for c in checks if not c.ok]
    if not missing:
        return None
    return "; ".join(f"this host lacks {c.name} {c.program or c.detail} (fix: {c.fix})" for c in missing)


def build_platform(spec: Spec, platform: Platform, tag: str, work: Path) -> Path:
    """Run a worker's steps for one platform in `work` (holding the checkout in `work/build`), with
    the tools bundle a worker gets (the same bytes); the archive."""
    source, dist = work / "build", work / "dist" / platform.name
    bundle = str(write_bundle(build_job(spec, platform), work / "tools" / platform.name))
    tool, tagged = [sys.executable, bundle], ["--tag", tag]
    checked = _run_step("preflight", [*tool, "preflight", "check", bundle, *tagged], source)
    found = next((json.loads(line[len(preflight.PROPERTIES):]) for line in reversed(checked.splitlines())
                  if line.startswith(preflight.PROPERTIES)), None)
    if found is None:
        raise _StepFailed("step 'preflight' printed no properties line")
    target_dir = work / "cargo-target" / platform.name
    env = {**os.environ, **found["build_env"], "CARGO_TARGET_DIR": str(target_dir), "CARGO_TERM_COLOR": "never"}
    _run_step("cargo build", build_argv(platform.to_json(), spec.project.manifest), source, env)
    bins = str(target_dir / platform.target / "release")
    _run_step("smoke test", [*tool, "gates", "smoke", bundle, *tagged, "--bin-dir", bins], source)
    _run_step("size gate", [*tool, "gates", "size", bundle, *tagged, "--bin-dir", bins], source)
    staged = stage_name(spec.project.name, tag, platform)
    _run_step("stage", [*tool, "stage", bundle, *tagged, "--name", staged, "--src", ".", "--bin-dir", bins,
                        "--out", str(dist), "--clean"], source)
    archive = dist / archive_name(spec.project.name, tag, platform)
    _run_step("archive", [*tool, "pack", "archive", str(dist / staged), "--format", platform.archive,
                          "--epoch", str(found["source_date_epoch"]), "--out", str(archive)], source)
    return archive


def rebuild(spec: Spec, meta: dict[str, Any], release_dir: Path, repo: str, work: Path,
            only: list[str] | None = None) -> list[PlatformResult]:
    """Rebuild every released platform this host can build (or those in `only`) and compare each."""
    tag, entries = str(meta["tag"]), {str(p["name"]): p for p in meta["platforms"]}
    unknown = sorted(set(only or []) - set(entries))
    if unknown:
        raise ReleaseError(f"--platform {', '.join(unknown)}: not in this release (it has {', '.join(entries)})")
    for name in entries:
        if name not in spec.platforms:
            raise ReleaseError(f"release.json platform {name}: not in {spec.path}; pass the farm's farm.toml "
                               f"with --spec FILE")
    checkout_release(repo, tag, str(meta["commit"]), work / "build")
    results = []
    for name, entry in entries.items():
        if only and name not in only:
            continue
        platform = spec.platforms[name]
        why = missing_tools(spec, platform)
        if why:
            results.append(PlatformResult(name, SKIPPED, why))
            continue
        _git("clean", "-qfdx", cwd=work / "build")  # each platform from a clean checkout, as on a worker
        try:
            archive = build_platform(spec, platform, tag, work)
        except _StepFailed as exc:
            results.append(PlatformResult(name, FAILED, str(exc)))
            continue
        results.append(compare_archive(entry, release_dir / str(entry["archive"]), archive))
    return results
