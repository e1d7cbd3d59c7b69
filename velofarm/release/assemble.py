"""Collect the archives of the builds a release triggered, verify them (bound to the release's commit,
byte-identical when built twice), and write one complete release directory.

The release coordinator's "verify and assemble" step runs it on the master (internal plumbing, not
an ops command):

    python -m velofarm.release.assemble --spec farm.toml --tag TAG --commit SHA --artifacts DIR --out DIR \
        --builds '{"PLATFORM": [BUILD_ID, ...]}' --records FILE [--source-cache DIR] [--git-cache DIR]
        (or --unsigned instead of --records)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velofarm.artifacts.store import BUILD_JSON, BuildIdentity, build_dir, read_build_identity, read_build_image
from velofarm.errors import ArtifactError, ReleaseError, VelofarmError, disk_fix, disk_problem
from velofarm.publish.links import asset_url, release_page_url
from velofarm.release.attest import TrustInputs, load_trust, sign_sums, write_attestations
from velofarm.release.changelog import Changes, changes_heading, release_changes, render_changes
from velofarm.release.checksums import checksum_line, read_checksum_file, sha256_file
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, SUMS_FILE
from velofarm.release.notes import NotesIntro, NotesPlatform, VerifyInfo, render_notes
from velofarm.release.reproduce import BuiltArchive, Comparison, compare_builds
from velofarm.spec.farm import Spec, load_spec
from velofarm.spec.job import archive_name
from velofarm.tags.semver import TagVersion, parse_tag


@dataclass(frozen=True)
class PlatformBuilds:
    """One platform's verified archive (the first build's) and every build of it that agreed."""

    archive: Path
    sha256: str
    records: tuple[BuildIdentity, ...]


def stored_build(spec: Spec, tag: str, commit: str, platform_name: str, build_id: int,
                 artifacts_root: Path) -> tuple[BuildIdentity, Path, str]:
    """What one triggered build stored, checked to be bound to this release; ReleaseError naming both."""
    name = archive_name(spec.project.name, tag, spec.platforms[platform_name])
    try:
        folder = build_dir(artifacts_root, tag, platform_name, build_id)
        archive, sums = folder / name, folder / f"{name}.sha256"
        for path in (archive, sums):
            if not path.is_file():
                raise ReleaseError(f"tag {tag}: platform {platform_name}: {path} is missing: build {build_id}, "
                                   f"which this release triggered, stored nothing; rebuild the release")
        record = read_build_identity(folder)
    except ArtifactError as exc:
        raise ReleaseError(str(exc)) from None
    mine = f"this release triggered build {build_id} of {tag} at commit {commit}"
    if (record.build_id, record.platform, record.tag) != (build_id, platform_name, tag):
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {folder / BUILD_JSON} says {record.describe()} "
                           f"of {record.platform} {record.tag}, but {mine}; the store was tampered with: rebuild")
    if record.commit != commit:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {name} was made by {record.describe()} from "
                           f"commit {record.commit}, but {mine}; rebuild the release")
    expected, listed = read_checksum_file(sums)
    if listed != name:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {sums.name} names '{listed}', not '{name}'")
    actual = sha256_file(archive)
    if actual != expected:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {name} has SHA-256 {actual} but its .sha256 "
                           f"says {expected}; the archive changed after it was built: rebuild the platform")
    if actual != record.sha256:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {name} has SHA-256 {actual} but {BUILD_JSON} "
                           f"of {record.describe()} says {record.sha256}; the store was changed after the "
                           "build: rebuild the platform")
    return record, archive, actual


def collect_platform(spec: Spec, tag: str, commit: str, platform_name: str, build_ids: Sequence[int],
                     artifacts_root: Path) -> PlatformBuilds:
    """The platform's archive from the builds this release triggered, which must all agree."""
    if len(build_ids) < spec.release.reproduce:
        raise ReleaseError(f"tag {tag}: platform {platform_name}: {len(build_ids)} build(s) triggered, but "
                           f"[release] reproduce = {spec.release.reproduce}; rebuild the release")
    found = [stored_build(spec, tag, commit, platform_name, int(b), artifacts_root) for b in build_ids]
    first_record, first_path, first_digest = found[0]
    for record, path, digest in found[1:]:
        compared = compare_builds(platform_name, BuiltArchive(first_record.describe(), first_path, first_digest),
                                  BuiltArchive(record.describe(), path, digest))
        if not compared.agreed:
            raise ReleaseError(f"tag {tag}: {compared.report.rstrip()}")
    return PlatformBuilds(first_path, first_digest, tuple(r for r, _, _ in found))


@dataclass(frozen=True)
class Mismatch:
    """Two builds of one platform that disagree: the report, and both archives for diffoscope."""

    comparison: Comparison
    first: BuiltArchive
    second: BuiltArchive
    report_file: Path


def compare_stored(spec: Spec, tag: str, commit: str, artifacts_root: Path,
                   builds: Mapping[str, Sequence[int]]) -> list[Mismatch]:
    """Every platform built more than once whose builds disagree; each report is also written
    beside the second build's archive (`differs-from-<first id>.txt`)."""
    mismatches = []
    for platform in sorted(builds):
        found = [stored_build(spec, tag, commit, platform, int(b), artifacts_root) for b in builds[platform]]
        first = BuiltArchive(found[0][0].describe(), found[0][1], found[0][2])
        for record, path, digest in found[1:]:
            second = BuiltArchive(record.describe(), path, digest)
            compared = compare_builds(platform, first, second)
            if not compared.agreed:
                report = path.parent / f"differs-from-{found[0][0].build_id}.txt"
                report.write_text(compared.report, encoding="utf-8")
                mismatches.append(Mismatch(compared, first, second, report))
    return mismatches


def _identity_json(record: BuildIdentity) -> dict[str, Any]:
    """A build as release.json records it: from the master's build.json, nothing a worker said."""
    identity: dict[str, Any] = {"build_id": record.build_id, "build_number": record.build_number,
                                "builder": record.builder, "worker": record.worker, "commit": record.commit}
    if record.signed:
        identity["authenticode"] = record.signed
    return identity


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def assemble_release(spec: Spec, tag: str, commit: str, artifacts_root: Path, out: Path,
                     builds: Mapping[str, Sequence[int]], changes: Changes | None = None,
                     trust: TrustInputs | None = None) -> Path:
    """Write `out` (which must not exist) as a complete, verified release directory; with `trust`,
    also signed (SHA256SUMS.minisig, SHA256SUMS.sig) and attested (provenance, SBOM).

    `builds` maps each platform to the ids of the builds this release triggered (the coordinator
    reads them from Buildbot); only what those builds stored can be published.
    `changes` (changelog.collect_changes) opens the notes and goes into release.json; without it
    the notes say nothing of what changed.
    """
    version = parse_tag(tag)
    if version is None:
        raise ReleaseError(f"tag {tag}: not v + a semantic version (vMAJOR.MINOR.PATCH[-PRE][+BUILD])")
    if out.exists():
        raise ReleaseError(f"{out}: already exists; remove it or pick another output folder")
    missing = [name for name in spec.platforms if not builds.get(name)]
    if missing:
        raise ReleaseError(f"tag {tag}: platform {missing[0]}: this release triggered no build of it; "
                           "rebuild the release (every platform in farm.toml is built)")
    found = {name: collect_platform(spec, tag, commit, name, builds[name], artifacts_root) for name in spec.platforms}
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        _write_release(spec, tag, commit, version, found, tmp, changes, trust)
        os.replace(tmp, out)
    except OSError as exc:  # a full or read-only disk: nothing half-written stays (finally)
        raise ReleaseError(f"tag {tag}: cannot write the release folder {out}: {disk_problem(exc)}; "
                           f"{disk_fix(exc, out.parent)} (the master's staging folder; `velofarm artifacts "
                           "prune` removes old artifacts) and release again") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _intro(changes: Changes | None) -> NotesIntro:
    if changes is None:
        return NotesIntro()
    return NotesIntro(changes.annotation, changes_heading(changes), render_changes(changes))


def _write_release(spec: Spec, tag: str, commit: str, version: TagVersion,
                   found: dict[str, PlatformBuilds], tmp: Path, changes: Changes | None,
                   trust: TrustInputs | None) -> None:
    notes_platforms, sums = [], []
    for name, built in found.items():
        archive, digest = built.archive, built.sha256
        platform = spec.platforms[name]
        _link_or_copy(archive, tmp / archive.name)
        (tmp / f"{archive.name}.sha256").write_text(checksum_line(digest, archive.name), encoding="utf-8")
        size = archive.stat().st_size
        sums.append(checksum_line(digest, archive.name))
        notes_platforms.append(NotesPlatform(name, platform.target, platform.os, archive.name, digest, size,
                                             platform.exe_suffix, asset_url(spec.release, tag, archive.name)))
    binaries = [b.name for b in spec.project.binaries]
    trust_meta: dict[str, Any] = {}
    if trust is not None:
        exes = sorted({b + spec.platforms[n].exe_suffix for n in found for b in binaries})
        trust_meta = write_attestations(tmp, spec.project.name, version.version, tag, spec.repo_url,
                                        {b.archive.name: (b.archive, b.sha256) for b in found.values()}, exes,
                                        trust)
        sums += [checksum_line(sha256_file(tmp / n), n) for n in trust_meta.values()]
    (tmp / SUMS_FILE).write_text("".join(sorted(sums, key=lambda line: line.split("  ")[1])), encoding="utf-8")
    if trust is not None:
        trust_meta["signatures"] = sign_sums(tmp, spec.project.name, tag, trust)
    runnable = [b.name for b in spec.project.binaries if b.smoke] or binaries
    intro = _intro(changes)
    verify = VerifyInfo.from_keys_dir(spec.resolve("keys"), trust_meta) if trust is not None else None
    notes = render_notes(spec.project.title, spec.project.name, tag, commit, version.prerelease, notes_platforms,
                         binaries, list(spec.project.ship), runnable[0],
                         sums_url=asset_url(spec.release, tag, SUMS_FILE), intro=intro, verify=verify)
    (tmp / NOTES_FILE).write_text(notes, encoding="utf-8")
    extra: dict[str, Any] = {"commit": commit, **trust_meta}
    if changes is not None:  # the Releases page shows it (collapsed) from here
        extra["changelog"], extra["previous_tag"] = intro.changelog, changes.previous
    _write_meta(spec, tag, version, found, notes_platforms, extra, tmp)


def _write_meta(spec: Spec, tag: str, version: TagVersion, found: dict[str, PlatformBuilds],
                notes_platforms: list[NotesPlatform], extra: dict[str, Any], tmp: Path) -> None:
    """release.json; `extra` holds the commit, the trust assets (signatures, provenance, sbom), the changelog."""
    # Archives were hashed once (collect_platform); only the small files written here are hashed now.
    known = {built.archive.name: built.sha256 for built in found.values()}
    assets = []
    for path in sorted(tmp.iterdir()):
        if path.name != NOTES_FILE:
            digest = known.get(path.name) or sha256_file(path)
            assets.append({"name": path.name, "size": path.stat().st_size, "sha256": digest,
                           "url": asset_url(spec.release, tag, path.name)})
    meta: dict[str, Any] = {
        "format": 1, "project": spec.project.name, "title": f"{spec.project.title} {tag}", "tag": tag,
        "version": version.version, "commit": extra["commit"],
        "prerelease": version.prerelease,
        # builder_image(_digest): the container image a Docker worker built the platform in.
        "platforms": [{"name": p.name, "target": p.target, "archive": p.archive, "sha256": p.sha256,
                       "size": p.size, "url": p.url, "builds": [_identity_json(r) for r in found[p.name].records],
                       **read_build_image(found[p.name].archive.parent)}
                      for p in notes_platforms],
        "reproduced": {"builds_per_platform": spec.release.reproduce,
                       "platforms": {name: {"agreed": [r.build_id for r in built.records], "sha256": built.sha256}
                                     for name, built in found.items()}},
        "assets": assets, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "release_url": release_page_url(spec.release, tag),
    }
    meta.update(extra)
    (tmp / RELEASE_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def build_ids(text: str) -> dict[str, list[int]]:
    """--builds '{"PLATFORM": [BUILD_ID, ...]}': the builds the release triggered."""
    try:
        data = json.loads(text)
        if isinstance(data, dict) and all(isinstance(v, list) and all(isinstance(i, int) for i in v)
                                          for v in data.values()):
            return {str(k): list(v) for k, v in data.items()}
    except ValueError:
        pass
    raise ReleaseError(f"--builds: {text!r} is not a JSON object of platform -> [build id, ...], "
                       'e.g. \'{"linux-x86_64": [17]}\'')


def _trust(spec: Spec, args: argparse.Namespace) -> TrustInputs:
    """The keys (checked first: a bad key fails before any fetch), the records, the master's fetch of the tag."""
    if not args.records:
        raise ReleaseError("--records FILE (the coordinator's build records) is needed to sign and attest; "
                           "pass --unsigned for a folder without signatures")
    return load_trust(spec.resolve(spec.master.secrets_dir), spec.resolve("keys"), Path(args.records),
                      list(spec.platforms), spec.repo_url, args.tag, args.commit, spec.project.manifest,
                      Path(args.source_cache or Path(args.out).parent / ".source-cache"))


def main(argv: list[str] | None = None) -> int:
    """The coordinator's step: assemble, then print every asset; errors are one `error: ` line."""
    parser = argparse.ArgumentParser(prog="python -m velofarm.release.assemble",
                                     description="collect and verify artifacts into a release folder")
    for opt in ("--spec", "--tag", "--commit", "--artifacts", "--out"):
        parser.add_argument(opt, required=True)
    parser.add_argument("--git-cache", help="folder for a mirror of the project's tags (the changelog); "
                        "without it the notes list no changes")
    parser.add_argument("--builds", required=True,
                        help='the builds the release triggered: {"PLATFORM": [BUILD_ID, ...]}')
    parser.add_argument("--records", help="the coordinator's build records (JSON) for the provenance")
    parser.add_argument("--source-cache", help="where the master fetches the tag to read Cargo.lock (a bare repo)")
    parser.add_argument("--unsigned", action="store_true", help="no signatures, provenance or SBOM")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(Path(args.spec))
        builds = build_ids(args.builds)  # checked before the keys, the fetch and the changelog's git work
        trust = None if args.unsigned else _trust(spec, args)
        changes = release_changes(spec, args.tag, args.commit, Path(args.git_cache)) if args.git_cache else None
        out = assemble_release(spec, args.tag, args.commit, Path(args.artifacts), Path(args.out), builds,
                               changes, trust)
    except VelofarmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    meta = json.loads((out / RELEASE_JSON).read_text(encoding="utf-8"))
    print(f"release {meta['tag']} assembled in {out}: every archive matches its .sha256; "
          f"prerelease={meta['prerelease']}")
    for asset in meta["assets"]:
        print(f"  {asset['sha256']}  {asset['size']:>10}  {asset['name']}")
    kind = "pre-release" if meta["prerelease"] else "release"
    print(f"summary: {len(meta['platforms'])} archives verified; {kind} {meta['tag']} assembled")  # the step's summary
    return 0


if __name__ == "__main__":
    sys.exit(main())
