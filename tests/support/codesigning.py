"""A throwaway code-signing PKI for the Authenticode tests: a CA and an RSA signing certificate
it issued (real openssl), and a tiny real Windows executable (real mingw-w64)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from conftest import need

OPENSSL_CNF = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = velofarm test CA
[ca_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[signer_ext]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


@dataclass(frozen=True)
class SigningPKI:
    ca: Path  # the CA certificate users would trust (`osslsigncode verify -CAfile`)
    cert: Path  # the signing certificate (what the secrets folder holds as authenticode-cert.pem)
    key: Path  # its RSA key (authenticode-key.pem)


def make_pki(folder: Path) -> SigningPKI:
    openssl = need("openssl", "openssl")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "openssl.cnf").write_text(OPENSSL_CNF, encoding="utf-8")
    cnf = str(folder / "openssl.cnf")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
        "-config", cnf, "-extensions", "ca_ext", "-set_serial", "1")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "signer.key", "-out", "signer.csr",
        "-subj", "/CN=velofarm test signer")
    run("x509", "-req", "-in", "signer.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2",
        "-days", "3650", "-out", "signer.pem", "-extfile", cnf, "-extensions", "signer_ext")
    (folder / "signer.key").chmod(0o600)
    return SigningPKI(folder / "ca.pem", folder / "signer.pem", folder / "signer.key")


def install_signer(pki: SigningPKI, secrets: Path) -> None:
    """Put the certificate and key where the farm reads them (the secrets folder, 0600)."""
    from velofarm.release.authenticode import CERT_SECRET, KEY_SECRET
    for source, name in ((pki.cert, CERT_SECRET), (pki.key, KEY_SECRET)):
        target = secrets / name
        target.write_bytes(source.read_bytes())
        target.chmod(0o600)


def tiny_exe(path: Path) -> Path:
    gcc = need("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64")
    source = path.with_suffix(".c")
    source.write_text("int main(void) { return 0; }\n", encoding="utf-8")
    subprocess.run([gcc, "-o", str(path), str(source)], check=True, capture_output=True)
    source.unlink()
    return path


def osslsigncode_verify(exe: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    tool = need("osslsigncode", "osslsigncode")
    return subprocess.run([tool, "verify", "-in", str(exe), "-CAfile", str(ca)], capture_output=True, text=True,
                          check=False)
