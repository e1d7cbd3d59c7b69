"""Signed checksums, provenance and SBOM: checked by the real tools and by an independent DSSE check."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import need
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.trustfarm import CARGO_LOCK, TAG, TrustFarm, make_trust_farm

from velofarm.cli.main import main
from velofarm.errors import ReleaseError
from velofarm.release.keys import NAMESPACE, PRINCIPAL
from velofarm.release.model import RELEASE_JSON, SUMS_FILE

COMMIT_TIME = 1767225600  # localfarm.git commits at 2026-01-01T00:00:00Z


@pytest.fixture
def farm(tmp_path: Path) -> TrustFarm:
    return make_trust_farm(tmp_path / "farm")


@pytest.fixture
def release(farm: TrustFarm) -> Path:
    return farm.assemble(farm.root / "staging" / TAG)


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify", *args])
    return code, capsys.readouterr().out


def test_release_lists_and_records_its_trust_assets(release: Path) -> None:
    meta = json.loads((release / RELEASE_JSON).read_text())
    assert meta["signatures"] == ["SHA256SUMS.minisig", "SHA256SUMS.sig"]
    assert (meta["provenance"], meta["sbom"]) == (f"demo-{TAG}.intoto.jsonl", f"demo-{TAG}.cdx.json")
    sums = (release / SUMS_FILE).read_text()
    for name in (meta["provenance"], meta["sbom"], f"demo-{TAG}-x86_64-unknown-linux-gnu.tar.gz"):
        assert f"  {name}\n" in sums
    assert {a["name"] for a in meta["assets"]} >= {"SHA256SUMS.minisig", "SHA256SUMS.sig", meta["sbom"]}


def test_real_minisign_and_ssh_keygen_verify_the_signatures(farm: TrustFarm, release: Path) -> None:
    minisign = need("minisign", "minisign")
    ssh_keygen = need("ssh-keygen", "openssh-client")
    out = subprocess.run([minisign, "-Vm", "SHA256SUMS", "-p", str(farm.keys / "minisign.pub")], cwd=release,
                         capture_output=True, text=True)
    assert out.returncode == 0 and "Signature and comment signature verified" in out.stdout, out.stdout + out.stderr
    assert f"timestamp:{COMMIT_TIME}" in out.stdout and f"demo {TAG}" in out.stdout  # the commit's time, not now
    with open(release / SUMS_FILE, "rb") as stdin:
        out = subprocess.run([ssh_keygen, "-Y", "verify", "-f", str(farm.keys / "allowed_signers"), "-I", PRINCIPAL,
                              "-n", NAMESPACE, "-s", str(release / "SHA256SUMS.sig")], stdin=stdin,
                             capture_output=True, text=True)
    assert out.returncode == 0 and f'Good "{NAMESPACE}" signature for {PRINCIPAL}' in out.stdout, out.stderr
    with open(release / f"demo-{TAG}.cdx.json", "rb") as stdin:  # another file: the same signature fails
        bad = subprocess.run([ssh_keygen, "-Y", "verify", "-f", str(farm.keys / "allowed_signers"), "-I",
                              PRINCIPAL, "-n", NAMESPACE, "-s", str(release / "SHA256SUMS.sig")], stdin=stdin,
                             capture_output=True, text=True)
    assert bad.returncode != 0


def test_signatures_are_what_the_real_tools_write_with_the_same_key(farm: TrustFarm, release: Path,
                                                                   tmp_path: Path) -> None:
    """Ed25519 is deterministic: minisign -S and ssh-keygen -Y sign with our key files give our bytes."""
    minisign, ssh_keygen = need("minisign", "minisign"), need("ssh-keygen", "openssh-client")
    work = tmp_path / "tools"
    work.mkdir()
    shutil.copy(release / SUMS_FILE, work / SUMS_FILE)
    comment = (release / "SHA256SUMS.minisig").read_text().splitlines()[2].removeprefix("trusted comment: ")
    subprocess.run([minisign, "-S", "-s", str(farm.secrets.path("signing-minisign.key")), "-m", SUMS_FILE,
                    "-c", "signature from velofarm secret key", "-t", comment], cwd=work, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    subprocess.run([ssh_keygen, "-Y", "sign", "-f", str(farm.secrets.path("signing-ssh.key")), "-n", NAMESPACE,
                    SUMS_FILE], cwd=work, check=True, capture_output=True)
    assert (work / "SHA256SUMS.minisig").read_bytes() == (release / "SHA256SUMS.minisig").read_bytes()
    assert (work / "SHA256SUMS.sig").read_bytes() == (release / "SHA256SUMS.sig").read_bytes()


def test_provenance_passes_an_independent_dsse_check(farm: TrustFarm, release: Path) -> None:
    lines = (release / f"demo-{TAG}.intoto.jsonl").read_text().splitlines()
    assert len(lines) == 1
    envelope = json.loads(lines[0])
    payload = base64.b64decode(envelope["payload"])
    ptype = envelope["payloadType"].encode()
    pae = b"DSSEv1 " + str(len(ptype)).encode() + b" " + ptype + b" " + str(len(payload)).encode() + b" " + payload
    public = serialization.load_pem_public_key((farm.keys / "provenance.pub").read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    public.verify(base64.b64decode(envelope["signatures"][0]["sig"]), pae, ec.ECDSA(hashes.SHA256()))
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    archives = sorted(p.name for p in release.iterdir() if p.name.endswith((".tar.gz", ".zip")))
    assert [s["name"] for s in statement["subject"]] == archives
    for subject in statement["subject"]:
        assert subject["digest"]["sha256"] == hashlib.sha256((release / subject["name"]).read_bytes()).hexdigest()
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"] == {"source": f"git+{farm.spec.repo_url}", "ref": f"refs/tags/{TAG}",
                                           "platforms": ["linux-x86_64", "windows-x86_64-gnu"]}
    deps = {d.get("name") or d.get("uri"): d for d in build["resolvedDependencies"]}
    assert deps[f"git+{farm.spec.repo_url}@refs/tags/{TAG}"]["digest"] == {"gitCommit": farm.commit}
    assert deps["Cargo.lock"]["digest"]["sha256"] == hashlib.sha256(CARGO_LOCK.encode()).hexdigest()
    assert deps["rustc linux-x86_64"]["annotations"]["rustc -vV"].startswith("rustc 1.63.0")
    assert build["internalParameters"]["sourceDateEpoch"] == COMMIT_TIME
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "http://127.0.0.1:8010/"
    assert {b["annotations"]["worker"] for b in run["byproducts"]} == {"lin-1"}
    assert all("/#/builders/" in b["annotations"]["invocationId"] for b in run["byproducts"])


def test_sbom_lists_every_crate_and_the_archives(release: Path) -> None:
    sbom = json.loads((release / f"demo-{TAG}.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.6"
    crates = {c["purl"]: c for c in sbom["components"] if c["type"] == "library"}
    assert set(crates) == {"pkg:cargo/demo@1.2.3", "pkg:cargo/itoa@1.0.11"}
    assert crates["pkg:cargo/itoa@1.0.11"]["hashes"][0]["content"].startswith("49f1f148733354")
    files = {c["name"]: c for c in sbom["components"] if c["type"] == "file"}
    linux = files[f"demo-{TAG}-x86_64-unknown-linux-gnu.tar.gz"]
    assert linux["hashes"][0]["content"] == hashlib.sha256((release / linux["name"]).read_bytes()).hexdigest()
    assert linux["components"][0]["name"] == "demo"
    assert linux["components"][0]["hashes"][0]["content"] == hashlib.sha256(b"binary linux-x86_64\n").hexdigest()
    assert files[f"demo-{TAG}-x86_64-pc-windows-gnu.zip"]["components"][0]["name"] == "demo.exe"


def test_a_second_assembly_signs_the_same_bytes(farm: TrustFarm, release: Path) -> None:
    again = farm.assemble(farm.root / "staging2" / TAG)
    for name in (SUMS_FILE, "SHA256SUMS.minisig", "SHA256SUMS.sig", f"demo-{TAG}.cdx.json"):
        assert (again / name).read_bytes() == (release / name).read_bytes(), name


def test_velofarm_verify_checks_everything(farm: TrustFarm, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(capsys, str(release), "--keys", str(farm.keys))
    assert code == 0 and "both signatures" in out, out
    code, out = verify(capsys, str(release), "--key", str(farm.keys / "minisign.pub"),
                       "--key", str(farm.keys / "allowed_signers"), "--key", str(farm.keys / "provenance.pub"))
    assert code == 0, out


def test_verify_without_keys_is_bad_input(release: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = verify(capsys, str(release))
    assert code == 2 and "--keys DIR" in out
    code, out = verify(capsys, str(release), "--keys", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere: no such keys folder" in out


SIGNED_ASSETS = ["archive", "archive.sha256", SUMS_FILE, "SHA256SUMS.minisig", "SHA256SUMS.sig", "provenance", "sbom"]


@pytest.mark.parametrize("which", SIGNED_ASSETS)
def test_tampering_with_any_one_asset_fails_verify_naming_it(farm: TrustFarm, release: Path, which: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    archive = f"demo-{TAG}-x86_64-unknown-linux-gnu.tar.gz"
    name = {"archive": archive, "archive.sha256": f"{archive}.sha256", "provenance": f"demo-{TAG}.intoto.jsonl",
            "sbom": f"demo-{TAG}.cdx.json"}.get(which, which)
    path = release / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    # Change one meaningful character: a hex digit of a checksum, a base64 letter, a byte of an archive.
    at = next(i for i in range(middle, len(data)) if chr(data[i]) in "0123456789abcdefABCDEF")
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    path.write_bytes(bytes(data))
    code, out = verify(capsys, str(release), "--keys", str(farm.keys))
    assert code == 1, out
    failures = [line for line in out.splitlines() if line.startswith("FAIL ")]
    assert failures and any(name in line for line in failures), out


def test_a_stripped_signature_is_noticed(farm: TrustFarm, release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (release / "SHA256SUMS.sig").unlink()
    meta = json.loads((release / RELEASE_JSON).read_text())
    meta["signatures"] = ["SHA256SUMS.minisig"]
    meta["assets"] = [a for a in meta["assets"] if a["name"] != "SHA256SUMS.sig"]
    (release / RELEASE_JSON).write_text(json.dumps(meta))
    code, out = verify(capsys, str(release), "--keys", str(farm.keys))
    assert code == 1 and "SHA256SUMS.sig: missing" in out


def test_a_release_signed_by_another_farm_fails(release: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    other = make_trust_farm(tmp_path / "other")
    code, out = verify(capsys, str(release), "--keys", str(other.keys))
    assert code == 1
    assert "SHA256SUMS.minisig: signed by key" in out and "not among the trusted keys" in out
    assert "SHA256SUMS.sig: signed by a key not in allowed_signers" in out
    assert f"demo-{TAG}.intoto.jsonl: the DSSE signature does not verify" in out


def test_unsigned_checks_checksums_only(release: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(capsys, str(release), "--unsigned")
    assert code == 0 and "ok: checksums verify" in out


# ------------------------------------------------------------------------------------ bad input

def test_a_missing_key_fails_assembly_before_anything_is_written(farm: TrustFarm) -> None:
    farm.secrets.path("signing-ssh.key").unlink()
    with pytest.raises(ReleaseError, match=r"signing-ssh.key: signing key is missing; run: velofarm keys init"):
        farm.assemble(farm.root / "staging" / TAG)
    assert not (farm.root / "staging").exists()


def test_a_world_readable_key_is_refused(farm: TrustFarm) -> None:
    farm.secrets.path("signing-minisign.key").chmod(0o644)
    with pytest.raises(ReleaseError, match=r"signing-minisign.key: secret file is readable by others.*chmod 600.*"
                                           r"velofarm keys rotate"):
        farm.assemble(farm.root / "staging" / TAG)
    assert not (farm.root / "staging").exists()


def test_a_key_that_does_not_match_keys_dir_is_refused(farm: TrustFarm, tmp_path: Path) -> None:
    other = make_trust_farm(tmp_path / "other")
    shutil.copy(other.keys / "minisign.pub", farm.keys / "minisign.pub")
    with pytest.raises(ReleaseError, match=r"keys/minisign.pub: does not match the secret key signing-minisign.key"):
        farm.assemble(farm.root / "staging" / TAG)
    assert not (farm.root / "staging").exists()


def test_no_keys_at_all_names_keys_init(tmp_path: Path) -> None:
    farm = make_trust_farm(tmp_path / "bare", with_keys=False)
    with pytest.raises(ReleaseError, match="run: velofarm keys init"):
        farm.assemble(farm.root / "staging" / TAG)


def test_a_moved_tag_fails_assembly(farm: TrustFarm) -> None:
    from velofarm.cli.localfarm import git
    src = Path(farm.spec.repo_url)
    (src / "README.md").write_text("moved\n")
    git("add", "-A", cwd=src)
    git("commit", "-q", "-m", "moved", cwd=src)
    git("tag", "-f", TAG, cwd=src)
    with pytest.raises(ReleaseError, match=f"tag {TAG}: now points to .*, but this release built {farm.commit}"):
        farm.assemble(farm.root / "staging" / TAG)


def _resign(farm: TrustFarm, release: Path) -> None:
    """Rewrite SHA256SUMS for the files it lists and sign it again with the farm's real keys, as a
    careless (or hostile) insider would: only the provenance and SBOM checks can then catch it."""
    from velofarm.release.checksums import checksum_line, parse_sums, sha256_file
    from velofarm.release.keys import load_signing_keys
    from velofarm.release.signatures import minisign_sign, sshsig_sign
    names = parse_sums((release / SUMS_FILE).read_text(), SUMS_FILE)
    data = "".join(checksum_line(sha256_file(release / n), n) for n in sorted(names)).encode()
    (release / SUMS_FILE).write_bytes(data)
    keys = load_signing_keys(farm.secrets, farm.keys)
    comment = (release / "SHA256SUMS.minisig").read_text().splitlines()[2].removeprefix("trusted comment: ")
    (release / "SHA256SUMS.minisig").write_text(minisign_sign(keys.minisign_id, keys.minisign, data, comment))
    (release / "SHA256SUMS.sig").write_text(sshsig_sign(keys.ssh, data, NAMESPACE))
    meta = json.loads((release / RELEASE_JSON).read_text())
    for asset in meta["assets"]:
        asset["size"], asset["sha256"] = (release / asset["name"]).stat().st_size, sha256_file(release / asset["name"])
    (release / RELEASE_JSON).write_text(json.dumps(meta))


def test_provenance_whose_subject_is_not_an_archive_fails(farm: TrustFarm, release: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from velofarm.release.keys import load_signing_keys
    from velofarm.release.provenance import sign_envelope
    path = release / f"demo-{TAG}.intoto.jsonl"
    statement = json.loads(base64.b64decode(json.loads(path.read_text())["payload"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    path.write_text(sign_envelope(statement, load_signing_keys(farm.secrets, farm.keys).provenance))
    _resign(farm, release)
    code, out = verify(capsys, str(release), "--keys", str(farm.keys))
    assert code == 1
    name = statement["subject"][0]["name"]
    assert f"FAIL demo-{TAG}.intoto.jsonl: subject {name} has SHA-256 {'0' * 64}, but the archive has" in out


def test_an_sbom_of_another_cargo_lock_fails(farm: TrustFarm, release: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from velofarm.release.sbom import build_sbom
    sbom = json.loads((release / f"demo-{TAG}.cdx.json").read_text())
    archives = {c["name"]: (c["hashes"][0]["content"], {}) for c in sbom["components"] if c["type"] == "file"}
    other_lock = CARGO_LOCK.replace("1.0.11", "1.0.10").encode()
    (release / f"demo-{TAG}.cdx.json").write_text(build_sbom("demo", "1.2.3", TAG, farm.commit, COMMIT_TIME,
                                                             other_lock, archives))
    _resign(farm, release)
    code, out = verify(capsys, str(release), "--keys", str(farm.keys))
    assert code == 1
    assert (f"FAIL demo-{TAG}.cdx.json: lists a Cargo.lock with SHA-256 {hashlib.sha256(other_lock).hexdigest()}, "
            "but the provenance says the build used") in out
