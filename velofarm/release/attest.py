"""The trust assets of a release, written on the master after every archive is verified:
the SBOM, the signed provenance, and the two signatures of SHA256SUMS."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from velofarm import __version__
from velofarm.release.keys import NAMESPACE, SigningKeys
from velofarm.release.model import SUMS_FILE
from velofarm.release.provenance import ProvenanceInputs, build_statement, provenance_file_name, sign_envelope
from velofarm.release.records import BuildRecords
from velofarm.release.sbom import binary_digests, build_sbom, sbom_file_name
from velofarm.release.signatures import minisign_sign, sshsig_sign
from velofarm.release.source import SourceFacts

MINISIG_FILE, SSHSIG_FILE = f"{SUMS_FILE}.minisig", f"{SUMS_FILE}.sig"


@dataclass(frozen=True)
class TrustInputs:
    """What assembly needs to sign and attest: the keys and the master's own records."""

    keys: SigningKeys
    records: BuildRecords
    source: SourceFacts


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def write_attestations(folder: Path, project: str, version: str, tag: str, repository: str,
                       archives: dict[str, tuple[Path, str]], binaries: list[str],
                       trust: TrustInputs) -> dict[str, str]:
    """Write the SBOM and the provenance into `folder`; {"sbom": name, "provenance": name}."""
    platforms = sorted(trust.records.builds)
    source = trust.source
    contents = {name: (digest, binary_digests(path, binaries)) for name, (path, digest) in archives.items()}
    sbom = sbom_file_name(project, tag)
    (folder / sbom).write_text(build_sbom(project, version, tag, source.commit, source.commit_time,
                                          source.cargo_lock, contents), encoding="utf-8")
    builds = [b for name in platforms for b in trust.records.builds[name]]
    inputs = ProvenanceInputs(
        project=project, tag=tag, commit=source.commit, repository=repository, platforms=platforms,
        subjects={name: digest for name, (_, digest) in archives.items()},
        cargo_lock_sha256=_sha256(source.cargo_lock), source_date_epoch=source.commit_time,
        builder_id=trust.records.builder_id, release_url=trust.records.release_url,
        started_on=trust.records.started_on,
        finished_on=max((b.finished_on for b in builds), default=_rfc3339(time.time())),
        velofarm_version=__version__, builds=builds)
    provenance = provenance_file_name(project, tag)
    (folder / provenance).write_text(sign_envelope(build_statement(inputs), trust.keys.provenance), encoding="utf-8")
    return {"sbom": sbom, "provenance": provenance}


def sign_sums(folder: Path, project: str, tag: str, trust: TrustInputs) -> list[str]:
    """SHA256SUMS.minisig and SHA256SUMS.sig; the trusted comment carries the commit time, not now."""
    data = (folder / SUMS_FILE).read_bytes()
    comment = f"timestamp:{trust.source.commit_time}\tfile:{SUMS_FILE}\tprehashed\t{project} {tag}"
    keys = trust.keys
    (folder / MINISIG_FILE).write_text(minisign_sign(keys.minisign_id, keys.minisign, data, comment), encoding="utf-8")
    (folder / SSHSIG_FILE).write_text(sshsig_sign(keys.ssh, data, NAMESPACE), encoding="utf-8")
    return [MINISIG_FILE, SSHSIG_FILE]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_trust(secrets_dir: Path, keys_dir: Path, records_path: Path, platforms: list[str], repo_url: str,
               tag: str, commit: str, manifest: str, source_cache: Path) -> TrustInputs:
    """Keys first (a missing or mismatched key fails before any fetch), then the records and the source."""
    from velofarm.release.keys import load_signing_keys
    from velofarm.release.records import load_build_records
    from velofarm.release.source import read_source
    from velofarm.secretstore import SecretStore

    keys = load_signing_keys(SecretStore(secrets_dir), keys_dir)
    records = load_build_records(records_path, platforms, commit)
    return TrustInputs(keys, records, read_source(repo_url, tag, commit, manifest, source_cache))
