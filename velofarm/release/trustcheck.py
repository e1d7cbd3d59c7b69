"""Check a release folder's signatures, provenance and SBOM against the farm's public keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from velofarm.errors import ReleaseError
from velofarm.release.attest import MINISIG_FILE, SSHSIG_FILE
from velofarm.release.checksums import sha256_file
from velofarm.release.keys import NAMESPACE, TrustedKeys
from velofarm.release.model import RELEASE_JSON, SUMS_FILE
from velofarm.release.provenance import cargo_lock_digest, check_statement, open_envelope, provenance_file_name
from velofarm.release.sbom import check_sbom, sbom_file_name
from velofarm.release.signatures import minisign_verify, sshsig_verify


def check_trust(directory: Path, meta: dict[str, Any], trusted: TrustedKeys) -> list[str]:
    """Every problem with the signatures, provenance and SBOM; a release without them is a problem."""
    if not (directory / SUMS_FILE).is_file():
        return [f"{SUMS_FILE}: missing, so nothing is signed"]
    data = (directory / SUMS_FILE).read_bytes()
    problems = _check_signatures(directory, meta, data, trusted)
    archives = {p["archive"]: sha256_file(directory / p["archive"]) for p in meta["platforms"]
                if (directory / p["archive"]).is_file()}
    provenance = str(meta.get("provenance") or provenance_file_name(meta["project"], meta["tag"]))
    lock_digest: str | None = None
    path = directory / provenance
    if not path.is_file():
        problems.append(f"{provenance}: missing: the release has no provenance (was it made before signing was "
                        f"set up, or was the file removed?)")
    else:
        lines = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        try:
            statement = open_envelope(lines[0] if lines else "", trusted.provenance, provenance)
            problems += check_statement(statement, archives, meta["commit"], provenance)
            lock_digest = cargo_lock_digest(statement)
        except ReleaseError as exc:
            problems.append(str(exc))
    sbom = str(meta.get("sbom") or sbom_file_name(meta["project"], meta["tag"]))
    if not (directory / sbom).is_file():
        problems.append(f"{sbom}: missing: the release has no SBOM")
    else:
        problems += check_sbom((directory / sbom).read_text(encoding="utf-8", errors="replace"), archives,
                               lock_digest, sbom)
    return problems


def _check_signatures(directory: Path, meta: dict[str, Any], data: bytes, trusted: TrustedKeys) -> list[str]:
    problems = []
    listed = meta.get("signatures") or []
    for name in (MINISIG_FILE, SSHSIG_FILE):
        if name not in listed:
            problems.append(f"{RELEASE_JSON}: does not list {name} under 'signatures'; the release is not signed")
        if not (directory / name).is_file():
            problems.append(f"{name}: missing; the release is not signed (or the signature was removed)")
    minisig = directory / MINISIG_FILE
    if minisig.is_file():
        try:
            comment = minisign_verify(minisig.read_text(encoding="utf-8", errors="replace"), data,
                                      trusted.minisign, MINISIG_FILE)
            if f"{meta['project']} {meta['tag']}" not in comment:
                problems.append(f"{MINISIG_FILE}: trusted comment '{comment}' is for another release than "
                                f"{meta['project']} {meta['tag']}")
        except ReleaseError as exc:
            problems.append(str(exc))
    sshsig = directory / SSHSIG_FILE
    if sshsig.is_file():
        try:
            sshsig_verify(sshsig.read_text(encoding="utf-8", errors="replace"), data, NAMESPACE, trusted.ssh,
                          SSHSIG_FILE)
        except ReleaseError as exc:
            problems.append(str(exc))
    return problems


def check_folder_without_meta(directory: Path, tag: str, trusted: TrustedKeys, commit: str | None) -> list[str]:
    """A published release that carries no release.json (GitHub): SHA256SUMS is the list, checked by
    its signatures; every listed file must match it, then the provenance and SBOM are checked."""
    from velofarm.release.checksums import parse_sums
    if not (directory / SUMS_FILE).is_file():
        return [f"{SUMS_FILE}: missing from the published release"]
    try:
        sums = parse_sums((directory / SUMS_FILE).read_bytes().decode("utf-8", errors="replace"), SUMS_FILE)
    except ReleaseError as exc:
        return [str(exc)]
    problems = [f"{name}: listed in {SUMS_FILE} but missing" for name in sorted(sums) if not (directory / name).is_file()]
    problems += [f"{name}: SHA-256 does not match {SUMS_FILE}" for name, digest in sorted(sums.items())
                 if (directory / name).is_file() and sha256_file(directory / name) != digest]
    provenance = [n for n in sums if n.endswith(f"-{tag}.intoto.jsonl")]
    project = provenance[0].removesuffix(f"-{tag}.intoto.jsonl") if provenance else "?"
    meta: dict[str, Any] = {
        "project": project, "tag": tag, "commit": commit,
        "platforms": [{"archive": n} for n in sorted(sums) if n.endswith((".tar.gz", ".zip"))],
        "signatures": [n for n in (MINISIG_FILE, SSHSIG_FILE) if (directory / n).is_file()],
        "provenance": provenance[0] if provenance else None, "sbom": sbom_file_name(project, tag),
    }
    return problems + check_trust(directory, meta, trusted)
