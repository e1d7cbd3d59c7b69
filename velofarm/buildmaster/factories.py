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
from velofarm.buildmaster.toolsteps import PreflightCommand, SendTools, ToolCommand
from velofarm.buildmaster.uploads import UploadArtifact
from velofarm.publish.select import token_secret
from velofarm.release.authenticode import Authenticode
from velofarm.spec.farm import Spec
from velofarm.spec.job import archive_name, build_argv, build_job, stage_name, upload_limit_bytes
from velofarm.spec.platforms import Platform
from velofarm.spec.toolbundle import BUNDLE_NAME

TAG = util.Interpolate("%(prop:tag)s")
BUNDLE = f"../tools/{BUNDLE_NAME}"  # every worker tool, run as `python BUNDLE TOOL ARGS...`
JOB = BUNDLE  # the bundle carries the job: each tool reads the job.json inside it
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


def _tool(platform: Platform, name: str, tool: str, *args: object, step: type[ToolCommand] = ToolCommand,
          **kw: object) -> ToolCommand:
    return step(name=name, command=[platform.python, BUNDLE, tool, *args], haltOnFailure=True, workdir="build", **kw)


def platform_factory(spec: Spec, platform: Platform, artifacts_root: Path, again: bool = False,
                     signer: Authenticode | None = None) -> util.BuildFactory:
    """Tag → checked out, tools sent, preflighted, built, smoke-tested, size-gated, staged, archived,
    stored (hashed and sent in one process): nine steps, each a phase the UI names.

    `again`: the second build of a reproducibility check (its own cargo target folder).
    `signer`: Authenticode-sign the .exe files on the master when the archive is stored.
    """
    f = util.BuildFactory()
    f.buildClass = FarmBuild  # a worker lost while being prepared must not hang the build (build.py)
    # Fetch the tag, then check out the commit the coordinator resolved it to (the sourcestamp's
    # revision): every platform builds the same commit even if someone moves the tag meanwhile.
    f.addStep(steps.Git(name="checkout tag", repourl=spec.repo_url, branch=util.Interpolate("refs/tags/%(prop:tag)s"),
                        mode="full", method="clean", haltOnFailure=True, **NO_ENV_LOG))
    f.addStep(SendTools(build_job(spec, platform), workerdest=BUNDLE, name="send tools", hideStepIf=True))
    # One call checks the version, the toolchain and the commit's time, and computes the build's
    # environment; it sets source_date_epoch and build_env for the steps below.
    f.addStep(_tool(platform, "preflight", "preflight", "check", JOB, "--tag", TAG, step=PreflightCommand,
                    sets=("source_date_epoch", "build_env")))
    f.addStep(steps.ShellCommand(name="cargo build", command=build_argv(platform.to_json(), spec.project.manifest),
                                 env=build_env(platform, again), haltOnFailure=True, workdir="build", **NO_ENV_LOG,
                                 maxTime=max(1, round(spec.release.build_timeout_minutes * 60)),
                                 description=["building", platform.target],
                                 descriptionDone=[f"built {platform.target} ({platform.method}, release)"]))
    f.addStep(_tool(platform, "smoke test", "gates", "smoke", JOB, "--tag", TAG, "--bin-dir", bin_dir(platform, again)))
    f.addStep(_tool(platform, "size gate", "gates", "size", JOB, "--tag", TAG, "--bin-dir", bin_dir(platform, again)))
    # --clean empties ../dist first: earlier builds' archives do not pile up on the worker.
    f.addStep(_tool(platform, "stage", "stage", JOB, "--tag", TAG, "--name", _stage_name(spec, platform), "--src", ".",
                    "--bin-dir", bin_dir(platform, again), "--out", "../dist", "--clean"))
    f.addStep(_tool(platform, "archive", "pack", "archive", util.Interpolate("../dist/%(kw:s)s", s=_stage_name(spec, platform)),
                    "--format", platform.archive, "--epoch", util.Interpolate("%(prop:source_date_epoch)s"),
                    "--out", util.Interpolate("../dist/%(kw:a)s", a=_archive(spec, platform))))
    # One streamed, resumable HTTP PUT into the store (see uploads.py): the worker's transfer.py hashes
    # the archive and sends the hash with it, the master hashes as it arrives; no checksum step.
    f.addStep(UploadArtifact(name="store artifact", artifacts_root=str(artifacts_root), platform=platform.name,
                             archive=_archive(spec, platform), source_dir="../dist", python=platform.python,
                             max_bytes=upload_limit_bytes(spec, platform),
                             bundle=BUNDLE, signer=signer, haltOnFailure=True, workdir="build", **NO_ENV_LOG))
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
