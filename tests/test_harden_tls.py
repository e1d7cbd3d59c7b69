"""Finding 10: TLS for worker connections (PB and uploads), on loopback with a test CA.

A CA and the master's certificate (for 127.0.0.1) are made here with `cryptography`; the master
gets pb_tls = true with the certificate and key in its secrets folder, the workers trust only the
CA. A real release then runs over TLS end to end.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FARM_TOML, need_host_toolchains
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.farmtools import step_log, wait_release_of
from test_onboarding import PROJECT_VENV, bootstrap
from test_onboarding import farm as onboarding_farm  # noqa: F401 (the fixture)

from velofarm.cli.localfarm import LocalFarm, write_farm
from velofarm.onboard.manage import add_worker
from velofarm.onboard.workertac import create_worker_dir
from velofarm.secretstore import worker_secret_name
from velofarm.tags.notify import install_hook
from velofarm.worker_tools import transfer


def _name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def make_test_ca() -> tuple[str, str, str]:
    """(CA certificate, the master's certificate for 127.0.0.1 and localhost, its key), all PEM."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("velofarm test CA")).issuer_name(_name("velofarm test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem).decode(), cert.public_bytes(pem).decode(), key_pem.decode()


@pytest.fixture(scope="module")
def ca() -> tuple[str, str, str]:
    return make_test_ca()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, ca: tuple[str, str, str]) -> Iterator[LocalFarm]:
    need_host_toolchains()
    root = tmp_path_factory.mktemp("tls")
    farm = write_farm(root / "farm", FARM_TOML, ["linux-x86_64"], master={"pb_tls": True})
    farm.secrets.put("master-tls.crt", ca[1])
    farm.secrets.put("master-tls.key", ca[2])
    for name in farm.workers:
        create_worker_dir(farm.worker_dir(name), f"127.0.0.1:{farm.pb_port}", name,
                          farm.secrets.get(worker_secret_name(name)) or "", ca_pem=ca[0])
    farm.init_repo()
    (root / "ca.pem").write_text(ca[0])
    install_hook(farm.remote, sys.executable, f"127.0.0.1:{farm.pb_port}", farm.secrets.path("change-source-password"),
                 str(farm.remote), ca_file=root / "ca.pem")  # the push hook speaks TLS too
    farm.start_all()  # the workers connect: over TLS, or not at all
    yield farm
    farm.stop_all()


def upload_port(farm: LocalFarm) -> int:
    text = (farm.master_dir / "twistd.log").read_text()
    return int(text.split("velofarm uploads: receiving on ")[1].split("\n")[0].rsplit(":", 1)[1])


@pytest.mark.integration
def test_a_release_runs_over_tls(farm: LocalFarm) -> None:
    farm.push_tag("v0.1.0")
    build = wait_release_of(farm, "v0.1.0")
    assert build["results"] == 0, build["state_string"]
    platform = farm.api("builders/build-linux-x86_64/builds?order=-number&limit=1")["builds"][0]
    log = step_log(farm, platform["buildid"], "store artifact")
    assert f"--url https://127.0.0.1:{upload_port(farm)}/upload/" in log and "--ca-file" in log
    assert "the master verified SHA-256" in log
    tac = (farm.worker_dir(next(iter(farm.workers))) / "buildbot.tac").read_text()
    assert "connection_string = 'tls:host=127.0.0.1:port=" in tac and "trustRoots=" in tac


@pytest.mark.integration
@pytest.mark.parametrize("port_of", ["pb", "upload"])
def test_both_ports_speak_only_tls_with_the_farms_certificate(farm: LocalFarm, ca: tuple[str, str, str],
                                                               port_of: str) -> None:
    port = farm.pb_port if port_of == "pb" else upload_port(farm)
    context = ssl.create_default_context(cadata=ca[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    untrusting = ssl.create_default_context()  # the system CAs only
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusting.wrap_socket(raw, server_hostname="127.0.0.1")


@pytest.mark.integration
def test_an_upload_without_the_ca_fails_naming_the_fix(farm: LocalFarm, tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"x")
    with pytest.raises(transfer.TransferError, match="not trusted.*--ca-file"):
        transfer.upload_file(f"https://127.0.0.1:{upload_port(farm)}/upload/", "token", str(archive), "0" * 64,
                             emit=lambda line: None, attempts=1)


def test_the_bootstrap_takes_the_ca(onboarding_farm: Path, tmp_path: Path, ca: Any) -> None:  # noqa: F811
    added = add_worker(onboarding_farm, "lin-tls", ["linux-x86_64"])
    (tmp_path / "ca.pem").write_text(ca[0])
    machine = tmp_path / "machine"
    out = bootstrap(added, "--password-file", str(added.secret), "--ca-file", str(tmp_path / "ca.pem"),
                    "--dir", str(machine), "--venv", str(PROJECT_VENV), "--no-service")
    assert "TLS: the worker trusts only" in out.stdout
    worker = machine / "worker"
    assert (worker / "master-ca" / "ca.pem").read_text() == ca[0]
    tac = (worker / "buildbot.tac").read_text()
    assert (f"connection_string = 'tls:host=builds.example.com:port=9989:trustRoots={worker}/master-ca'" in tac)
    assert "buildmaster_host = None" in tac and "\nport = None" in tac
