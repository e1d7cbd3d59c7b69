"""Authenticode on the master: real osslsigncode, a test CA made by real openssl, real PE files."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from conftest import FARM_TOML, need
from support.codesigning import SigningPKI, install_signer, make_pki, osslsigncode_verify, tiny_exe

from velofarm.buildmaster.config import load_master_config
from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.errors import ReleaseError, VelofarmError
from velofarm.release.authenticode import CERT_SECRET, KEY_SECRET, authenticode_signer, sign_archive
from velofarm.worker_tools import pack

EPOCH = 1733788800
TOP = "demo-v1.0.0-x86_64-pc-windows-gnu"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> SigningPKI:
    need("osslsigncode", "osslsigncode")
    return make_pki(tmp_path_factory.mktemp("pki"))


def secrets_with(pki: SigningPKI, folder: Path) -> Path:
    folder.mkdir(mode=0o700)
    shutil.copy(pki.cert, folder / CERT_SECRET)
    shutil.copy(pki.key, folder / KEY_SECRET)
    (folder / KEY_SECRET).chmod(0o600)
    return folder


def unsigned_zip(folder: Path) -> Path:
    """A windows archive as a worker makes it: pack.py's stage layout, two .exe files and a README."""
    stage = folder / TOP
    stage.mkdir(parents=True)
    tiny_exe(stage / "demo.exe")
    shutil.copy(stage / "demo.exe", stage / "demo-cli.exe")
    (stage / "README.md").write_text("demo\n", encoding="utf-8")
    archive = pack.write_archive(stage, "zip", EPOCH, folder / f"{TOP}.zip")
    pack.write_checksum(archive)
    shutil.rmtree(stage)
    return archive


def test_signed_exes_verify_against_the_ca_and_the_archive_is_remade(pki: SigningPKI, tmp_path: Path) -> None:
    signer = authenticode_signer(secrets_with(pki, tmp_path / "secrets"), "Demo")
    archive = unsigned_zip(tmp_path / "a")
    unsigned = pack.sha256_file(archive)
    signed = sign_archive(signer, archive, EPOCH)
    assert signed["files"] == [f"{TOP}/demo-cli.exe", f"{TOP}/demo.exe"]
    assert signed["unsigned_sha256"] == unsigned and signed["time"] == EPOCH
    assert pack.sha256_file(archive) != unsigned
    assert (tmp_path / "a" / f"{TOP}.zip.sha256").read_text() == f"{pack.sha256_file(archive)}  {TOP}.zip\n"
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == [f"{TOP}/", f"{TOP}/README.md", f"{TOP}/demo-cli.exe", f"{TOP}/demo.exe"]
        assert (zf.getinfo(f"{TOP}/demo.exe").external_attr >> 16) & 0o777 == 0o755
        zf.extractall(tmp_path / "out")
    for exe in ("demo.exe", "demo-cli.exe"):
        verified = osslsigncode_verify(tmp_path / "out" / TOP / exe, pki.ca)
        assert verified.returncode == 0 and "Signature verification: ok" in verified.stdout, verified.stdout
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{TOP}.zip", f"{TOP}.zip.sha256"]


def test_two_signings_of_the_same_build_are_byte_identical(pki: SigningPKI, tmp_path: Path) -> None:
    signer = authenticode_signer(secrets_with(pki, tmp_path / "secrets"), "Demo")
    first = unsigned_zip(tmp_path / "one")
    second = tmp_path / "two" / first.name
    second.parent.mkdir()
    shutil.copy(first, second)
    sign_archive(signer, first, EPOCH)
    sign_archive(signer, second, EPOCH)
    assert first.read_bytes() == second.read_bytes()


def test_an_unsigned_exe_does_not_verify(pki: SigningPKI, tmp_path: Path) -> None:
    # The check above can fail: osslsigncode refuses a file without a signature.
    assert osslsigncode_verify(tiny_exe(tmp_path / "plain.exe"), pki.ca).returncode != 0


@pytest.mark.parametrize("missing", [CERT_SECRET, KEY_SECRET])
def test_a_missing_certificate_or_key_is_refused_naming_the_file(pki: SigningPKI, tmp_path: Path, missing: str) -> None:
    secrets = secrets_with(pki, tmp_path / "secrets")
    (secrets / missing).unlink()
    with pytest.raises(ReleaseError, match=f"{secrets / missing}: missing; a platform has authenticode = true"):
        authenticode_signer(secrets, "Demo")


def test_a_key_readable_by_others_is_refused(pki: SigningPKI, tmp_path: Path) -> None:
    secrets = secrets_with(pki, tmp_path / "secrets")
    (secrets / KEY_SECRET).chmod(0o644)
    with pytest.raises(ReleaseError, match=rf"{secrets / KEY_SECRET}: readable by others \(mode 0644\).*chmod 600"):
        authenticode_signer(secrets, "Demo")


def test_a_key_that_does_not_match_the_certificate_fails_signing_naming_both(pki: SigningPKI, tmp_path: Path) -> None:
    secrets = secrets_with(pki, tmp_path / "secrets")
    other = make_pki(tmp_path / "other")
    shutil.copy(other.key, secrets / KEY_SECRET)
    archive = unsigned_zip(tmp_path / "a")
    before = archive.read_bytes()
    with pytest.raises(ReleaseError, match=f"osslsigncode could not sign it .*{CERT_SECRET} and {KEY_SECRET}"):
        sign_archive(authenticode_signer(secrets, "Demo"), archive, EPOCH)
    assert archive.read_bytes() == before  # nothing half-signed left behind
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"{TOP}.zip", f"{TOP}.zip.sha256"]


def farm_with_authenticode(tmp_path: Path) -> LocalFarm:
    farm = write_farm(tmp_path / "farm", FARM_TOML, ["linux-x86_64", "windows-x86_64-gnu"])
    text = farm.spec_path.read_text()
    farm.spec_path.write_text(text.replace("[platforms.windows-x86_64-gnu]",
                                           "[platforms.windows-x86_64-gnu]\nauthenticode = true"))
    return farm


def test_the_master_refuses_to_start_without_the_signing_certificate(tmp_path: Path) -> None:
    farm = farm_with_authenticode(tmp_path)
    with pytest.raises(ReleaseError, match=f"{farm.secrets.directory / CERT_SECRET}: missing"):
        load_master_config(farm.root / "master", farm.spec_path)


def test_the_master_refuses_a_world_readable_signing_key(pki: SigningPKI, tmp_path: Path) -> None:
    farm = farm_with_authenticode(tmp_path)
    install_signer(pki, farm.secrets.directory)
    (farm.secrets.directory / KEY_SECRET).chmod(0o604)
    # The secrets folder's own check (SecretStore) or the signer's: either names the key file.
    with pytest.raises(VelofarmError, match=f"{farm.secrets.directory / KEY_SECRET}: .*readable by others"):
        load_master_config(farm.root / "master", farm.spec_path)
    (farm.secrets.directory / KEY_SECRET).chmod(0o600)
    config = load_master_config(farm.root / "master", farm.spec_path)
    uploads = [s for b in config["builders"] if b.name == "build-windows-x86_64-gnu" for s in b.factory.steps
               if s.kwargs.get("name") == "store artifact"]
    assert uploads and uploads[0].kwargs["signer"].key == farm.secrets.directory / KEY_SECRET
    linux = [s for b in config["builders"] if b.name == "build-linux-x86_64" for s in b.factory.steps
             if s.kwargs.get("name") == "store artifact"]
    assert linux and linux[0].kwargs["signer"] is None  # only the platform that asks is signed
