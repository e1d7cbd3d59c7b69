"""SLSA Provenance v1 in an in-toto Statement v1, wrapped in a DSSE envelope signed with ECDSA P-256.

Specs: slsa.dev/spec/v1.0/provenance, in-toto/attestation spec/v1, secure-systems-lab/dsse.
Everything except the subject digests comes from the master's own records (`BuildRecords`,
written by the coordinator from Buildbot's database; see buildmaster/records.py) and the
master's own fetch of the tagged commit (release/source.py).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from velofarm.errors import ReleaseError
from velofarm.release.keys import provenance_key_id

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
# What a build of this type means is documented in README ("Build type cargo-release/v1").
BUILD_TYPE = "https://velofarm.dev/buildtypes/cargo-release/v1"


@dataclass(frozen=True)
class PlatformBuild:
    """One platform build as the master recorded it."""

    platform: str
    url: str  # the build's page on the master: the invocationId
    worker: str
    started_on: str  # RFC 3339, UTC
    finished_on: str
    rustc: str = ""  # `rustc -vV` as the worker's toolchain step reported it
    builder_image_digest: str = ""  # "sha256:..." when the build ran in a known image


@dataclass(frozen=True)
class ProvenanceInputs:
    project: str
    tag: str
    commit: str
    repository: str
    platforms: list[str]
    subjects: dict[str, str]  # archive name -> sha256
    cargo_lock_sha256: str
    source_date_epoch: int
    builder_id: str  # the farm's [master] url
    release_url: str  # the coordinator build
    started_on: str
    finished_on: str
    velofarm_version: str
    builds: list[PlatformBuild] = field(default_factory=list)


def provenance_file_name(project: str, tag: str) -> str:
    return f"{project}-{tag}.intoto.jsonl"


def _dependencies(inputs: ProvenanceInputs) -> list[dict[str, Any]]:
    deps: list[dict[str, Any]] = [
        {"uri": f"git+{inputs.repository}@refs/tags/{inputs.tag}", "digest": {"gitCommit": inputs.commit}},
        {"name": "Cargo.lock", "digest": {"sha256": inputs.cargo_lock_sha256}},
    ]
    for build in inputs.builds:
        deps.append({"name": f"rustc {build.platform}", "annotations": {"rustc -vV": build.rustc or "unknown"}})
        if build.builder_image_digest:
            algorithm, _, value = build.builder_image_digest.partition(":")
            deps.append({"name": f"builder image {build.platform}", "digest": {algorithm: value}})
    return deps


def build_statement(inputs: ProvenanceInputs) -> dict[str, Any]:
    byproducts = [{"name": f"build {b.platform}", "uri": b.url,
                   "annotations": {"platform": b.platform, "worker": b.worker, "invocationId": b.url,
                                   "startedOn": b.started_on, "finishedOn": b.finished_on}}
                  for b in inputs.builds]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(inputs.subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"source": f"git+{inputs.repository}", "ref": f"refs/tags/{inputs.tag}",
                                       "platforms": sorted(inputs.platforms)},
                "internalParameters": {"sourceDateEpoch": inputs.source_date_epoch},
                "resolvedDependencies": _dependencies(inputs),
            },
            "runDetails": {
                "builder": {"id": inputs.builder_id, "version": {"velofarm": inputs.velofarm_version}},
                "metadata": {"invocationId": inputs.release_url, "startedOn": inputs.started_on,
                             "finishedOn": inputs.finished_on},
                "byproducts": byproducts,
            },
        },
    }


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(statement: dict[str, Any], key: ec.EllipticCurvePrivateKey) -> str:
    """One `.intoto.jsonl` line: the DSSE envelope of the statement (ECDSA P-256, SHA-256, DER signature)."""
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    # RFC 6979 deterministic ECDSA: the same statement gives the same envelope, so assembling a
    # release twice gives the same SHA256SUMS (and the same signatures of it).
    signature = key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                "signatures": [{"keyid": provenance_key_id(key.public_key()),
                                "sig": base64.b64encode(signature).decode()}]}
    return json.dumps(envelope, separators=(",", ":")) + "\n"


def open_envelope(line: str, keys: dict[str, ec.EllipticCurvePublicKey], where: str) -> dict[str, Any]:
    """The statement of a DSSE envelope signed by one of `keys`; ReleaseError saying what is wrong."""
    try:
        envelope = json.loads(line)
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = envelope["signatures"]
    except (ValueError, KeyError, TypeError):
        raise ReleaseError(f"{where}: not a DSSE envelope (payloadType, payload, signatures)") from None
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ReleaseError(f"{where}: payloadType is '{envelope.get('payloadType')}', not '{PAYLOAD_TYPE}'")
    if not keys:
        raise ReleaseError(f"{where}: no provenance key to check it with; pass keys/ (--keys) or provenance.pub (--key)")
    for entry in signatures:
        candidates = [keys[entry["keyid"]]] if entry.get("keyid") in keys else list(keys.values())
        for public in candidates:
            try:
                public.verify(base64.b64decode(entry["sig"]), pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
            except (InvalidSignature, ValueError, KeyError):
                continue
            return dict(json.loads(payload))
    raise ReleaseError(f"{where}: the DSSE signature does not verify with any trusted provenance key "
                       "(the provenance was changed, or signed by a key not in keys/)")


def check_statement(statement: dict[str, Any], archives: dict[str, str], commit: str | None,
                    where: str) -> list[str]:
    """What in a verified statement disagrees with the release: types, subjects, commit (None: any one)."""
    problems = []
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        problems.append(f"{where}: not an in-toto Statement v1 with SLSA Provenance v1")
    subjects = {s.get("name"): s.get("digest", {}).get("sha256") for s in statement.get("subject", [])}
    for name, digest in sorted(archives.items()):
        if name not in subjects:
            problems.append(f"{where}: no subject for archive {name}")
        elif subjects[name] != digest:
            problems.append(f"{where}: subject {name} has SHA-256 {subjects[name]}, but the archive has {digest}")
    problems += [f"{where}: subject {name} is not an archive of this release" for name in sorted(set(subjects) - set(archives))]
    deps = statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", [])
    commits = [d.get("digest", {}).get("gitCommit") for d in deps if "gitCommit" in d.get("digest", {})]
    if len(commits) != 1 or (commit is not None and commits != [commit]):
        problems.append(f"{where}: built from commit {commits[0] if commits else 'none'}, but the release is {commit}")
    return problems


def built_commit(statement: dict[str, Any]) -> str | None:
    deps = statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", [])
    return next((d["digest"]["gitCommit"] for d in deps if "gitCommit" in d.get("digest", {})), None)


def cargo_lock_digest(statement: dict[str, Any]) -> str | None:
    deps = statement.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", [])
    return next((d.get("digest", {}).get("sha256") for d in deps if d.get("name") == "Cargo.lock"), None)
