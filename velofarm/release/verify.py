"""Check a release directory end to end and load it for a publisher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from velofarm.errors import ReleaseError
from velofarm.release.checksums import parse_sums, read_checksum_file, sha256_file
from velofarm.release.keys import TrustedKeys
from velofarm.release.model import NOTES_FILE, RELEASE_JSON, SUMS_FILE, Asset, Release
from velofarm.tags.semver import parse_tag


def _load_meta(directory: Path) -> dict[str, Any]:
    path = directory / RELEASE_JSON
    if not path.is_file():
        raise ReleaseError(f"{directory}: {RELEASE_JSON} is missing; this is not a velofarm release directory")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ReleaseError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ReleaseError(f"{path}: not a JSON object; write the release again (velofarm.release.assemble)")
    for key in ("tag", "commit", "prerelease", "platforms", "assets", "project", "title"):
        if key not in meta:
            raise ReleaseError(f"{path}: field '{key}' is missing")
    return meta


def _plain_file_name(name: object) -> bool:
    """An asset is a file of the release folder itself: no folders, no '..', nothing hidden."""
    return (isinstance(name, str) and bool(name) and "/" not in name and "\\" not in name
            and not name.startswith(".") and "\x00" not in name and name not in (RELEASE_JSON, NOTES_FILE))


def verify_release(directory: Path, trusted: TrustedKeys | None = None) -> list[str]:
    """Every problem found in a release directory, each naming the file; empty when it verifies.
    With `trusted` keys, the release must also be signed and attested by them (trustcheck)."""
    try:
        meta = _load_meta(directory)
    except ReleaseError as exc:
        return [str(exc)]
    problems: list[str] = []
    listed = {a["name"]: a for a in meta["assets"]}
    for name, entry in sorted(listed.items()):
        if not _plain_file_name(name):
            problems.append(f"{RELEASE_JSON}: asset name '{name}' is not a plain file name; refusing it")
            continue
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: listed in {RELEASE_JSON} but missing")
            continue
        if path.stat().st_size != entry["size"]:
            problems.append(f"{name}: size {path.stat().st_size} but {RELEASE_JSON} says {entry['size']}")
        if sha256_file(path) != entry["sha256"]:
            problems.append(f"{name}: SHA-256 differs from {RELEASE_JSON}")
    extra = {p.name for p in directory.iterdir()} - set(listed) - {RELEASE_JSON, NOTES_FILE}
    problems += [f"{name}: present but not listed in {RELEASE_JSON}" for name in sorted(extra)]
    problems += _check_sums(directory, meta)
    if parse_tag(meta["tag"]) is None:
        problems.append(f"{RELEASE_JSON}: tag '{meta['tag']}' is not v + a semantic version")
    elif parse_tag(meta["tag"]).prerelease != meta["prerelease"]:  # type: ignore[union-attr]
        problems.append(f"{RELEASE_JSON}: prerelease is {meta['prerelease']} but tag {meta['tag']} says otherwise")
    if not (directory / NOTES_FILE).is_file():
        problems.append(f"{NOTES_FILE}: missing")
    if trusted is not None:
        from velofarm.release.trustcheck import check_trust
        problems += check_trust(directory, meta, trusted)
    return problems


def _check_sums(directory: Path, meta: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    sums_path = directory / SUMS_FILE
    if not sums_path.is_file():
        return [f"{SUMS_FILE}: missing"]
    try:
        sums = parse_sums(sums_path.read_bytes().decode("utf-8", errors="replace"), SUMS_FILE)
    except ReleaseError as exc:
        return [str(exc)]
    archives = [p["archive"] for p in meta["platforms"]]
    # The SBOM and provenance are listed too, so the signature of SHA256SUMS covers them.
    attested = [str(meta[k]) for k in ("sbom", "provenance") if meta.get(k)]
    problems += [f"{SUMS_FILE}: {name} is not listed" for name in attested if name not in sums]
    problems += [f"{name}: SHA-256 does not match {SUMS_FILE}" for name in attested
                 if name in sums and (directory / name).is_file() and sha256_file(directory / name) != sums[name]]
    for archive in archives:
        path = directory / archive
        if archive not in sums:
            problems.append(f"{SUMS_FILE}: {archive} is not listed")
        elif path.is_file() and sha256_file(path) != sums[archive]:
            problems.append(f"{archive}: SHA-256 does not match {SUMS_FILE}")
        side = directory / f"{archive}.sha256"
        try:
            digest, name = read_checksum_file(side)
            if name != archive or (archive in sums and digest != sums[archive]):
                problems.append(f"{side.name}: disagrees with {SUMS_FILE}")
        except (ReleaseError, FileNotFoundError) as exc:
            problems.append(f"{side.name}: {exc}" if isinstance(exc, FileNotFoundError) else str(exc))
    problems += [f"{SUMS_FILE}: lists {name}, which is not an archive of this release"
                 for name in sorted(set(sums) - set(archives) - set(attested))]
    return problems


def load_release(directory: Path, trusted: TrustedKeys | None = None) -> Release:
    """A verified Release for publishers; ReleaseError listing every problem otherwise. With `trusted`
    keys, a bad or missing signature, provenance or SBOM is such a problem too."""
    directory = Path(directory)
    problems = verify_release(directory, trusted)
    if problems:
        raise ReleaseError(f"{directory}: does not verify:\n  " + "\n  ".join(problems))
    meta = _load_meta(directory)
    assets = tuple(Asset(name=a["name"], path=directory / a["name"], size=a["size"], sha256=a["sha256"])
                   for a in meta["assets"])
    return Release(directory=directory, project=meta["project"], tag=meta["tag"],
                   version=meta.get("version", meta["tag"].lstrip("v")), commit=meta["commit"],
                   title=meta["title"], notes=(directory / NOTES_FILE).read_text(encoding="utf-8"),
                   prerelease=bool(meta["prerelease"]), platforms=tuple(p["name"] for p in meta["platforms"]),
                   assets=assets)
