"""Authenticode signing of Windows binaries, on the master (never on a worker).

A platform with `authenticode = true` uploads its archive unsigned; the master unpacks it, signs
every `.exe` with osslsigncode using the certificate and RSA key from the secrets folder, and
repacks it with the worker tools' own deterministic archiver and checksum. The signing time is the
tag's commit time (`-time`) and there is no timestamp server, so a signed rebuild is
byte-identical (RSA PKCS#1 v1.5 signatures are deterministic; ECDSA ones are not).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velofarm.errors import ReleaseError
from velofarm.worker_tools import pack

CERT_SECRET = "authenticode-cert.pem"
KEY_SECRET = "authenticode-key.pem"
TOOL = "osslsigncode"


@dataclass(frozen=True)
class Authenticode:
    """What signing needs: the certificate chain, the private key, the name shown by Windows."""

    cert: Path
    key: Path
    description: str


def authenticode_signer(secrets_dir: Path, description: str) -> Authenticode:
    """The signer for this farm, checked before any build starts; ReleaseError naming the file."""
    cert, key = secrets_dir / CERT_SECRET, secrets_dir / KEY_SECRET
    for path, what in ((cert, "the code-signing certificate (PEM, with its chain)"),
                       (key, "the certificate's RSA private key (PEM, unencrypted)")):
        if not path.is_file():
            raise ReleaseError(f"{path}: missing; a platform has authenticode = true: put {what} there (mode 0600), "
                               "or remove authenticode from the platform")
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        raise ReleaseError(f"{key}: readable by others (mode {mode:04o}); the signing key must be private: "
                           f"chmod 600 {key}")
    if shutil.which(TOOL) is None:
        raise ReleaseError(f"{TOOL} not found on the master; a platform has authenticode = true: "
                           "install it (Debian: apt-get install osslsigncode)")
    return Authenticode(cert, key, description)


def sign_exe(signer: Authenticode, exe: Path, epoch: int) -> None:
    """Sign one PE file in place (via a temporary file), dated `epoch`."""
    tmp = exe.with_name(f".{exe.name}.signed")
    tmp.unlink(missing_ok=True)
    argv = [TOOL, "sign", "-certs", str(signer.cert), "-key", str(signer.key), "-h", "sha256",
            "-n", signer.description, "-time", str(int(epoch)), "-in", str(exe), "-out", str(tmp)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ReleaseError(f"{exe.name}: {TOOL} could not sign it ({' / '.join(detail)}); check "
                           f"{signer.cert.name} and {signer.key.name} in the secrets folder belong together")
    os.chmod(tmp, stat.S_IMODE(exe.stat().st_mode))
    os.replace(tmp, exe)


def sign_archive(signer: Authenticode, archive: Path, epoch: int) -> dict[str, Any]:
    """Sign every .exe inside `archive`, rewrite it and its .sha256; what was signed, for build.json."""
    unsigned = pack.sha256_file(archive)
    work = archive.with_name(f".{archive.name}.signing")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        top = _extract(archive, work)
        exes = sorted(p for p in top.rglob("*") if p.is_file() and p.suffix.lower() == ".exe")
        if not exes:
            raise ReleaseError(f"{archive.name}: holds no .exe to sign, but its platform has authenticode = true")
        for exe in exes:
            sign_exe(signer, exe, epoch)
        fmt = "zip" if archive.name.endswith(".zip") else "tar.gz"
        pack.write_archive(top, fmt, epoch, archive)
        pack.write_checksum(archive)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"files": [p.relative_to(top.parent).as_posix() for p in exes], "unsigned_sha256": unsigned,
            "time": int(epoch), "certificate_sha256": hashlib.sha256(signer.cert.read_bytes()).hexdigest()}


def _extract(archive: Path, into: Path) -> Path:
    """Unpack an archive pack.py made (one top-level folder), keeping its modes; that folder."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = into / info.filename
                if not target.resolve().is_relative_to(into.resolve()):
                    raise ReleaseError(f"{archive.name}: entry {info.filename!r} points outside the archive")
                zf.extract(info, into)
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    os.chmod(target, mode)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")
    tops = list(into.iterdir())
    if len(tops) != 1 or not tops[0].is_dir():
        raise ReleaseError(f"{archive.name}: expected one top-level folder, found {sorted(p.name for p in tops)}")
    return tops[0]
