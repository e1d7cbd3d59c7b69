"""`velofarm keys init|rotate|show`: private keys 0600 in the secrets folder, public ones in keys/."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from conftest import need
from support.trustfarm import TAG, make_trust_farm

from velofarm.cli.main import main
from velofarm.errors import ReleaseError
from velofarm.release.keys import NAMESPACE, PRINCIPAL
from velofarm.release.model import SUMS_FILE

SECRETS = ("signing-minisign.key", "signing-ssh.key", "signing-provenance.key")


def test_init_writes_private_keys_0600_and_public_keys_to_keys(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    farm = make_trust_farm(tmp_path / "farm", with_keys=False)
    (farm.root / "farm.toml").write_text(f'[project]\nname = "demo"\ngit_url = "{farm.spec.repo_url}"\n'
                                         '[project.binaries]\ndemo = []\n[master]\nsecrets_dir = "secrets"\n[platforms.linux-x86_64]\n'
                                         '[workers.lin-1]\nplatforms = ["linux-x86_64"]\n')
    assert main(["keys", "init", "--spec", str(farm.root / "farm.toml")]) == 0
    out = capsys.readouterr().out
    for name in SECRETS:
        path = farm.secrets.path(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() not in out  # a private key is never printed
    assert stat.S_IMODE(farm.secrets.directory.stat().st_mode) == 0o700
    assert sorted(p.name for p in farm.keys.iterdir()) == ["allowed_signers", "minisign.pub", "provenance.pub",
                                                         "ssh.pub"]
    public = "".join(p.read_text() for p in farm.keys.iterdir())
    assert "PRIVATE" not in public and "untrusted comment: minisign public key" in public
    assert f'{PRINCIPAL} namespaces="{NAMESPACE}" ssh-ed25519 ' in (farm.keys / "allowed_signers").read_text()
    assert main(["keys", "init", "--spec", str(farm.root / "farm.toml")]) == 1  # never overwrites keys
    assert "signing keys exist already" in capsys.readouterr().err
    assert main(["keys", "show", "--spec", str(farm.root / "farm.toml")]) == 0


def test_rotate_keeps_old_releases_verifiable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ssh_keygen = need("ssh-keygen", "openssh-client")
    farm = make_trust_farm(tmp_path / "farm")
    old = farm.assemble(farm.root / "old" / TAG)
    old_minisign = (farm.keys / "minisign.pub").read_text()
    from velofarm.release.keys import rotate_keys
    rotate_keys(farm.secrets, farm.keys)
    assert (farm.keys / "minisign.pub").read_text() != old_minisign
    assert [p.read_text() for p in (farm.keys / "retired").glob("minisign-*.pub")] == [old_minisign]
    new = farm.assemble(farm.root / "new" / TAG)
    assert (new / "SHA256SUMS.sig").read_bytes() != (old / "SHA256SUMS.sig").read_bytes()
    for release in (old, new):
        assert main(["verify", str(release), "--keys", str(farm.keys)]) == 0, capsys.readouterr().out
        with open(release / SUMS_FILE, "rb") as stdin:  # allowed_signers lists the old key too
            out = subprocess.run([ssh_keygen, "-Y", "verify", "-f", str(farm.keys / "allowed_signers"), "-I",
                                  PRINCIPAL, "-n", NAMESPACE, "-s", str(release / "SHA256SUMS.sig")], stdin=stdin,
                                 capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
    # Only the retired key verifies the old release: the new one alone does not.
    assert main(["verify", str(old), "--key", str(farm.keys / "minisign.pub"), "--key",
                 str(farm.keys / "provenance.pub"), "--key", str(farm.keys / "ssh.pub")]) == 1


def test_rotate_replaces_a_leaked_key(tmp_path: Path) -> None:
    farm = make_trust_farm(tmp_path / "farm")
    farm.secrets.path("signing-ssh.key").chmod(0o644)  # readable by others: treat it as leaked
    with pytest.raises(ReleaseError, match="signing-ssh.key: secret file is readable by others"):
        farm.assemble(farm.root / "staging" / TAG)
    from velofarm.release.keys import rotate_keys
    rotate_keys(farm.secrets, farm.keys)
    assert stat.S_IMODE(farm.secrets.path("signing-ssh.key").stat().st_mode) == 0o600
    assert (farm.assemble(farm.root / "staging" / TAG) / "SHA256SUMS.sig").is_file()
