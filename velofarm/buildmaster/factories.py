"""One function turns a platform into a Buildbot factory; one more builds the release coordinator."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from buildbot.plugins import steps, util

from velofarm.buildmaster.build import FarmBuild
from velofarm.buildmaster.farmplan import platform_builders
from velofarm.buildmaster.records import RecordBuilds
from velofarm.buildmaster.steps import (
    CheckSigningKeys,
    CompareBuilds,
    PublishRelease,
    RecordReleaseFacts,
    ReleaseTrigger,
    ResolveTag,
)
from velofarm.buildmaster.toolsteps import ToolCommand
from velofarm.buildmaster.uploads import UploadArtifact
from velofarm.publish.select import token_secret
from velofarm.release.authenticode import Authenticode
from velofarm.spec.farm import Spec
from velofarm.spec.job import archive_name, build_job, stage_name, upload_limit_bytes
from velofarm.spec.platforms import Platform
from velofarm.worker_tools import gates, pack, preflight, stage, transfer

TAG = util.Interpolate("%(prop:tag)s")
TOOLS = "../tools"
JOB = f"{TOOLS}/job.json"
# buildbot-worker writes a command's whole environment at the top of its step log, and anyone may
# read logs: a CARGO_REGISTRY_TOKEN or AWS_* on a build host (or, for the coordinator, the master)
# would be public. Every command step passes this.
NO_ENV_LOG: dict[str, Any] = {"logEnviron": False}


def _stage_name(spec: Spec, platform: Platform) -> util.Transform:
    return util.Transform(stage_name, spec.project.name, util.Property("tag"), platform)


def _archive(spec: Spec, platform: Platform) -> util.Transform:
    return util.Transform(archive_name, spec.project.name, util.Property("tag"), platform)


def target_cache(platform: Platform, again: bool = False) -> str:
    """The cargo target folder's name: per worker and platform, and a separate one for the second
    build of a reproducibility check (sharing one would let the second build reuse the first's
    outputs, and cargo's lock would serialise the two)."""
    return f"{platform.name}-again" if again else platform.name


def cargo_target_dir(platform: Platform, again: bool = False) -> util.Interpolate:
    # Per worker and platform, outside the build folder, so a rebuild of any tag is warm.
    return util.Interpolate(f"%(prop:builddir)s/../.cargo-target/{target_cache(platform, again)}")


def bin_dir(platform: Platform, again: bool = False) -> util.Interpolate:
    return util.Interpolate(f"%(prop:builddir)s/../.cargo-target/{target_cache(platform, again)}/"
                            f"{platform.target}/release")


def build_env(platform: Platform, again: bool = False) -> util.Renderer:
    """The build's environment as the worker's preflight computed it (its own paths: source folder
    and cargo home remapped for reproducibility), plus the per-worker target cache."""
    @util.renderer
    def env(props: Any) -> Any:
        worker_env = dict(props.getProperty("build_env") or {})
        return props.render({**worker_env, "CARGO_TARGET_DIR": cargo_target_dir(platform, again),
                             "CARGO_TERM_COLOR": "never"})
    return env


def _parse_build_env(rc: int, stdout: str, stderr: str) -> dict[str, Any]:
    return {"build_env": json.loads(stdout)} if rc == 0 else {}


def _tool(platform: Platform, name: str, script: str, *args: object, **kw: object) -> ToolCommand:
    return ToolCommand(name=name, command=[platform.python, f"{TOOLS}/{script}", *args],
                              haltOnFailure=True, workdir="build", **kw)


def platform_factory(spec: Spec, platform: Platform, artifacts_root: Path, again: bool = False,
                     signer: Authenticode | None = None) -> util.BuildFactory:
    """Tag → checked, built, smoke-tested, size-gated, staged, archived, checksummed, stored.

    `again`: the second build of a reproducibility check (its own cargo target folder).
    `signer`: Authenticode-sign the .exe files on the master when the archive is stored.
    """
    f = util.BuildFactory()
    f.buildClass = FarmBuild  # a worker lost while being prepared must not hang the build (build.py)
    # Fetch the tag, then check out the commit the coordinator resolved it to (the sourcestamp's
    # revision): every platform builds the same commit even if someone moves the tag meanwhile.
    f.addStep(steps.Git(name="checkout tag", repourl=spec.repo_url, branch=util.Interpolate("refs/tags/%(prop:tag)s"),
                        mode="full", method="clean", haltOnFailure=True, **NO_ENV_LOG))
    f.addStep(steps.RemoveDirectory(name="clean tools", dir=TOOLS.removeprefix("../"), hideStepIf=True))
    f.addStep(steps.RemoveDirectory(name="clean dist", dir="dist", hideStepIf=True))
    f.addStep(steps.StringDownload(json.dumps(build_job(spec, platform), indent=1), workerdest=JOB,
                                   name="send job", hideStepIf=True))
    for module in (preflight, gates, stage, pack, transfer):
        f.addStep(steps.FileDownload(mastersrc=str(Path(module.__file__ or "")),
                                     workerdest=f"{TOOLS}/{Path(module.__file__ or '').name}",
                                     name=f"send {Path(module.__file__ or '').stem}", hideStepIf=True))
    f.addStep(_tool(platform, "version check", "preflight.py", "version", JOB, "--tag", TAG))
    f.addStep(_tool(platform, "toolchain check", "preflight.py", "toolchain", JOB))
    f.addStep(steps.SetPropertyFromCommand(name="tag time", command=["git", "log", "-1", "--format=%ct", "HEAD"],
                                           property="source_date_epoch", haltOnFailure=True, workdir="build",
                                           **NO_ENV_LOG))
    f.addStep(steps.SetPropertyFromCommand(
        name="build environment", command=[platform.python, f"{TOOLS}/preflight.py", "build-env", JOB, "--tag", TAG,
                                           "--epoch", util.Interpolate("%(prop:source_date_epoch)s")],
        extract_fn=_parse_build_env, haltOnFailure=True, workdir="build", **NO_ENV_LOG))
    f.addStep(steps.ShellCommand(name="cargo build", command=preflight.build_argv(platform.to_json()),
                                 env=build_env(platform, again), haltOnFailure=True, workdir="build", **NO_ENV_LOG,
                                 description=["building", platform.target],
                                 descriptionDone=[f"built {platform.target} ({platform.method}, release)"]))
    f.addStep(_tool(platform, "smoke test", "gates.py", "smoke", JOB, "--tag", TAG, "--bin-dir", bin_dir(platform, again)))
    f.addStep(_tool(platform, "size gate", "gates.py", "size", JOB, "--tag", TAG, "--bin-dir", bin_dir(platform, again)))
    f.addStep(_tool(platform, "stage", "stage.py", JOB, "--tag", TAG, "--name", _stage_name(spec, platform), "--src", ".",
                    "--bin-dir", bin_dir(platform, again), "--out", "../dist"))
    f.addStep(_tool(platform, "archive", "pack.py", "archive", util.Interpolate("../dist/%(kw:s)s", s=_stage_name(spec, platform)),
                    "--format", platform.archive, "--epoch", util.Interpolate("%(prop:source_date_epoch)s"),
                    "--out", util.Interpolate("../dist/%(kw:a)s", a=_archive(spec, platform))))
    f.addStep(_tool(platform, "checksum", "pack.py", "checksum", util.Interpolate("../dist/%(kw:a)s", a=_archive(spec, platform))))
    # One streamed, resumable HTTP PUT into the store, hashed as it arrives (see uploads.py),
    # instead of FileUpload's one round trip per block and a second read to verify.
    f.addStep(UploadArtifact(name="store artifact", artifacts_root=str(artifacts_root), platform=platform.name,
                             archive=_archive(spec, platform), source_dir="../dist", python=platform.python,
                             max_bytes=upload_limit_bytes(spec, platform),
                             tools=TOOLS, signer=signer, haltOnFailure=True, workdir="build", **NO_ENV_LOG))
    return f


def assemble_command(*args: object) -> list[object]:
    """The assembler's entry point, with the master's own interpreter (the coordinator runs on the master)."""
    return [sys.executable, "-m", "velofarm.release.assemble", *args]


def release_factory(spec: Spec, artifacts_root: Path, staging_root: Path) -> util.BuildFactory:
    """Resolve the tag, build every platform at once (twice with reproduce = 2), compare, verify,
    assemble, publish (unless a dry run)."""
    f = util.BuildFactory()
    f.buildClass = FarmBuild
    spec_path = str(spec.path)
    builders = platform_builders(spec)
    f.addStep(ResolveTag(name="resolve tag", repo_url=spec.repo_url, tag_pattern=spec.release.tag_pattern,
                         haltOnFailure=True))
    f.addStep(CheckSigningKeys(name="check signing keys", secrets_dir=str(spec.resolve(spec.master.secrets_dir)),
                               keys_dir=str(spec.resolve("keys")), haltOnFailure=True))
    # The notes' changelog, before any build: a CHANGELOG.md without the version's section stops
    # the release here, not after every platform was built. Its log shows what the notes will say.
    git_cache = str(staging_root.parent / "git-cache")
    f.addStep(ToolCommand(
        name="changelog", haltOnFailure=True,
        command=[sys.executable, "-m", "velofarm.release.changelog", "--spec", spec_path, "--tag", TAG,
                 "--commit", util.Property("tag_commit"), "--git-cache", git_cache]))
    f.addStep(ReleaseTrigger(
        name="build platforms", schedulerNames=[b.scheduler for b in builders],
        platform_of_builder={b.name: b.platform.name for b in builders}, waitForFinish=True, haltOnFailure=True,
        platform_timeout_minutes=spec.release.platform_timeout_minutes,
        sourceStamps=[{"codebase": "", "repository": spec.repo_url, "branch": TAG, "project": "",
                       "revision": util.Property("tag_commit")}],
        set_properties={"tag": TAG, "tag_commit": util.Property("tag_commit")}))
    if spec.release.reproduce > 1:
        f.addStep(CompareBuilds(name="compare builds", spec_path=spec_path, artifacts_root=str(artifacts_root),
                                haltOnFailure=True))
    staging = util.Interpolate(f"{staging_root}/%(prop:tag)s-%(prop:buildnumber)s")
    records = util.Interpolate(f"{staging_root}/%(prop:tag)s-%(prop:buildnumber)s.records.json")
    f.addStep(RecordBuilds(name="record builds", path=records, haltOnFailure=True))
    # Signs with the farm's keys from the secrets folder (read by this command on the master, never
    # passed on its command line or environment) and attests from the records just written.
    f.addStep(ToolCommand(
        name="verify and assemble", haltOnFailure=True,
        command=assemble_command("--spec", spec_path, "--tag", TAG, "--commit", util.Property("tag_commit"),
                                 "--artifacts", str(artifacts_root), "--out", staging, "--git-cache", git_cache,
                                 "--records", records, "--source-cache", str(staging_root.parent / "sources"),
                                 "--builds", util.Transform(json.dumps, util.Property("platform_builds"),
                                                            sort_keys=True))))
    f.addStep(RecordReleaseFacts(name="release facts", directory=staging, haltOnFailure=True))
    f.addStep(PublishRelease(name="publish", spec_path=spec_path, directory=staging,
                             token=util.Secret(secret) if (secret := token_secret(spec)) else None,
                             doStepIf=lambda step: not step.getProperty("dry_run", False), haltOnFailure=True))
    f.addStep(steps.RemoveDirectory(name="clean staging", dir=staging, alwaysRun=True, hideStepIf=True))
    f.addStep(steps.ShellCommand(name="clean records", command=["rm", "-f", records], alwaysRun=True,
                                 hideStepIf=True, **NO_ENV_LOG))
    return f
