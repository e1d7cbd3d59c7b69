"""The release's SBOM: CycloneDX 1.6 JSON (cyclonedx-python-lib) from Cargo.lock and the archives.

Lists every crate of Cargo.lock (purl pkg:cargo/NAME@VERSION, with the registry checksum when
Cargo.lock has one), each archive with its SHA-256 and the binaries inside it with theirs.
Deterministic: the serial number derives from project, tag and commit; the time is the commit's.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import tarfile
import tomllib
import uuid
import zipfile
from pathlib import Path
from typing import Any

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from velofarm.errors import ReleaseError

CARGO_LOCK_PROPERTY = "velofarm:cargo-lock:sha256"


def sbom_file_name(project: str, tag: str) -> str:
    return f"{project}-{tag}.cdx.json"


def cargo_lock_packages(text: str, where: str = "Cargo.lock") -> list[dict[str, str]]:
    """[{name, version, source?, checksum?}] of every [[package]] in a Cargo.lock."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReleaseError(f"{where}: not valid TOML ({exc}); commit the Cargo.lock cargo wrote") from None
    packages = data.get("package")
    if not isinstance(packages, list) or not packages:
        raise ReleaseError(f"{where}: no [[package]] entries; run cargo generate-lockfile and commit it")
    return [{k: str(v) for k, v in p.items() if k in ("name", "version", "source", "checksum")} for p in packages]


def _crate(package: dict[str, str]) -> Component:
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=package["checksum"])] if package.get("checksum") else []
    properties = [Property(name="velofarm:cargo:source", value=package.get("source", "workspace"))]
    return Component(name=package["name"], version=package["version"], type=ComponentType.LIBRARY,
                     purl=PackageURL("cargo", name=package["name"], version=package["version"]),
                     bom_ref=f"crate:{package['name']}@{package['version']}", hashes=hashes, properties=properties)


def binary_digests(archive: Path, binaries: list[str]) -> dict[str, str]:
    """SHA-256 of each named binary inside a .tar.gz or .zip (matched by file name, any folder)."""
    found: dict[str, str] = {}
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if info.filename.rsplit("/", 1)[-1] in binaries:
                    found[info.filename.rsplit("/", 1)[-1]] = hashlib.sha256(zf.read(info)).hexdigest()
        return found
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            extracted = tf.extractfile(member) if member.isfile() and base in binaries else None
            if extracted is not None:
                found[base] = hashlib.sha256(extracted.read()).hexdigest()
    return found


def _archive(name: str, digest: str, binaries: dict[str, str], version: str) -> Component:
    inner = [Component(name=b, version=version, type=ComponentType.APPLICATION, bom_ref=f"binary:{name}/{b}",
                       hashes=[HashType(alg=HashAlgorithm.SHA_256, content=d)]) for b, d in sorted(binaries.items())]
    return Component(name=name, type=ComponentType.FILE, bom_ref=f"archive:{name}",
                     hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)], components=inner)


def build_sbom(project: str, version: str, tag: str, commit: str, commit_time: int, cargo_lock: bytes,
               archives: dict[str, tuple[str, dict[str, str]]]) -> str:
    """CycloneDX JSON; `archives` maps archive name -> (sha256, {binary name: sha256})."""
    bom = Bom(serial_number=uuid.uuid5(uuid.NAMESPACE_URL, f"velofarm:{project}:{tag}:{commit}"))
    bom.metadata.timestamp = datetime.datetime.fromtimestamp(commit_time, tz=datetime.timezone.utc)
    bom.metadata.component = Component(name=project, version=version, type=ComponentType.APPLICATION,
                                       purl=PackageURL("cargo", name=project, version=version),
                                       bom_ref=f"release:{project}@{tag}")
    bom.metadata.properties.add(Property(name=CARGO_LOCK_PROPERTY, value=hashlib.sha256(cargo_lock).hexdigest()))
    bom.metadata.properties.add(Property(name="velofarm:git-commit", value=commit))
    crates = [_crate(p) for p in cargo_lock_packages(cargo_lock.decode("utf-8", errors="replace"))]
    for crate in crates:
        bom.components.add(crate)
    # The graph is flat (the release uses every locked crate); Cargo.lock's own edges are not needed
    # to answer "is crate X in this release?".
    bom.register_dependency(bom.metadata.component, crates)
    for name, (digest, binaries) in sorted(archives.items()):
        bom.components.add(_archive(name, digest, binaries, version))
    return str(JsonV1Dot6(bom).output_as_string(indent=2)) + "\n"


def check_sbom(text: str, archives: dict[str, str], cargo_lock_sha256: str | None, where: str) -> list[str]:
    """What in an SBOM disagrees with the release: its archives' digests and its Cargo.lock."""
    try:
        doc: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        return [f"{where}: not valid JSON ({exc})"]
    if doc.get("bomFormat") != "CycloneDX":
        return [f"{where}: not a CycloneDX SBOM (bomFormat)"]
    problems = []
    props = {p.get("name"): p.get("value") for p in doc.get("metadata", {}).get("properties", [])}
    if cargo_lock_sha256 and props.get(CARGO_LOCK_PROPERTY) != cargo_lock_sha256:
        problems.append(f"{where}: lists a Cargo.lock with SHA-256 {props.get(CARGO_LOCK_PROPERTY)}, but the "
                        f"provenance says the build used {cargo_lock_sha256}")
    listed = {c.get("name"): next((h.get("content") for h in c.get("hashes", []) if h.get("alg") == "SHA-256"), None)
              for c in doc.get("components", []) if c.get("type") == "file"}
    for name, digest in sorted(archives.items()):
        if listed.get(name) != digest:
            problems.append(f"{where}: archive {name} is {'missing' if name not in listed else 'listed with another SHA-256'}")
    return problems
