"""The farm's signing keys: private ones in the secrets folder, public ones in the checkout's `keys/`.

Three keys, one per format users verify with (see README "What a user verifies"):
  minisign (Ed25519)    signs SHA256SUMS -> SHA256SUMS.minisig    public: keys/minisign.pub
  OpenSSH (Ed25519)     signs SHA256SUMS -> SHA256SUMS.sig        public: keys/ssh.pub, keys/allowed_signers
  ECDSA P-256           signs the provenance (DSSE)               public: keys/provenance.pub (cosign reads it)
Rotation moves the old public keys to keys/retired/ (and keeps them in allowed_signers) so releases
signed before still verify. Only the `cryptography` library's primitives are used.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets as pysecrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from velofarm.errors import ReleaseError, SpecError
from velofarm.secretstore import SecretStore, write_private_file

MINISIGN_SECRET = "signing-minisign.key"
SSH_SECRET = "signing-ssh.key"
PROVENANCE_SECRET = "signing-provenance.key"
MINISIGN_PUB, SSH_PUB, ALLOWED_SIGNERS, PROVENANCE_PUB = "minisign.pub", "ssh.pub", "allowed_signers", "provenance.pub"
RETIRED = "retired"
PRINCIPAL = "release@velofarm"
NAMESPACE = "file@velofarm"  # PROTOCOL.sshsig namespace of SHA256SUMS.sig (ssh-keygen -Y verify -n)
INIT_FIX = "run: velofarm keys init"


@dataclass(frozen=True)
class SigningKeys:
    """The private keys, as the master holds them while it signs one release."""

    minisign_id: bytes  # minisign's 8-byte key number, as stored (little-endian)
    minisign: Ed25519PrivateKey
    ssh: Ed25519PrivateKey
    provenance: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys a verifier trusts: the current ones and every retired one."""

    minisign: dict[bytes, Ed25519PublicKey] = field(default_factory=dict)  # by key number
    ssh: list[Ed25519PublicKey] = field(default_factory=list)  # allowed for PRINCIPAL / NAMESPACE
    provenance: dict[str, ec.EllipticCurvePublicKey] = field(default_factory=dict)  # by DSSE keyid


# ----------------------------------------------------------------------------- minisign formats

def minisign_key_id_hex(key_id: bytes) -> str:
    """How minisign prints a key number: the little-endian integer in upper-case hex."""
    return key_id[::-1].hex().upper()


def minisign_public_text(key_id: bytes, public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return (f"untrusted comment: minisign public key {minisign_key_id_hex(key_id)}\n"
            f"{base64.b64encode(b'Ed' + key_id + raw).decode()}\n")


def minisign_secret_text(key_id: bytes, private: Ed25519PrivateKey) -> str:
    """minisign's secret key file, unencrypted (kdf "\\0\\0", as `minisign -G -W` writes): the
    secrets folder's 0600/0700 modes protect it, and the master must sign without a passphrase."""
    seed = private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    sk = seed + private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    checksum = hashlib.blake2b(b"Ed" + key_id + sk, digest_size=32).digest()
    blob = b"Ed" + b"\0\0" + b"B2" + bytes(32) + bytes(8) + bytes(8) + key_id + sk + checksum
    return f"untrusted comment: velofarm minisign secret key\n{base64.b64encode(blob).decode()}\n"


def parse_minisign_secret(text: str, where: str) -> tuple[bytes, Ed25519PrivateKey]:
    blob = _base64_line(text, where)
    if len(blob) != 158 or blob[:2] != b"Ed" or blob[2:4] != b"\0\0":
        raise ReleaseError(f"{where}: not an unencrypted minisign Ed25519 secret key; {INIT_FIX} "
                           "(or velofarm keys rotate)")
    key_id, sk, checksum = blob[54:62], blob[62:126], blob[126:158]
    if hashlib.blake2b(b"Ed" + key_id + sk, digest_size=32).digest() != checksum:
        raise ReleaseError(f"{where}: checksum mismatch (the key file is damaged); restore it from a backup "
                           "or run: velofarm keys rotate")
    return key_id, Ed25519PrivateKey.from_private_bytes(sk[:32])


def parse_minisign_public(text: str, where: str) -> tuple[bytes, Ed25519PublicKey]:
    blob = _base64_line(text, where)
    if len(blob) != 42 or blob[:2] != b"Ed":
        raise ReleaseError(f"{where}: not a minisign Ed25519 public key (one base64 line starting 'RW')")
    return blob[2:10], Ed25519PublicKey.from_public_bytes(blob[10:])


def _base64_line(text: str, where: str) -> bytes:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("untrusted comment:")]
    try:
        return base64.b64decode(lines[0].strip(), validate=True)
    except (IndexError, ValueError):
        raise ReleaseError(f"{where}: no base64 key line") from None


# ----------------------------------------------------------------------------- OpenSSH and PEM

def ssh_public_line(public: Ed25519PublicKey, comment: str = PRINCIPAL) -> str:
    line = public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}"


def allowed_signers_line(public: Ed25519PublicKey) -> str:
    return f'{PRINCIPAL} namespaces="{NAMESPACE}" {ssh_public_line(public, "").strip()}'


def provenance_key_id(public: ec.EllipticCurvePublicKey) -> str:
    """The DSSE keyid: SHA-256 of the public key's DER SubjectPublicKeyInfo, in hex."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def _pem_public(public: ec.EllipticCurvePublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# ----------------------------------------------------------------------------- create, rotate, load

def generate_keys() -> SigningKeys:
    return SigningKeys(minisign_id=pysecrets.token_bytes(8), minisign=Ed25519PrivateKey.generate(),
                       ssh=Ed25519PrivateKey.generate(), provenance=ec.generate_private_key(ec.SECP256R1()))


def _write_public(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def install_keys(keys: SigningKeys, store: SecretStore, keys_dir: Path, retired_signers: list[str]) -> None:
    """Write the private keys (0600) to the secrets folder and the public ones to keys/."""
    store.ensure()
    ssh_pem = keys.ssh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                     serialization.NoEncryption()).decode()
    provenance_pem = keys.provenance.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()).decode()
    write_private_file(store.path(MINISIGN_SECRET), minisign_secret_text(keys.minisign_id, keys.minisign))
    write_private_file(store.path(SSH_SECRET), ssh_pem)
    write_private_file(store.path(PROVENANCE_SECRET), provenance_pem)
    keys_dir.mkdir(parents=True, exist_ok=True)
    _write_public(keys_dir / MINISIGN_PUB, minisign_public_text(keys.minisign_id, keys.minisign.public_key()))
    _write_public(keys_dir / SSH_PUB, ssh_public_line(keys.ssh.public_key()) + "\n")
    _write_public(keys_dir / PROVENANCE_PUB, _pem_public(keys.provenance.public_key()))
    header = [f"# ssh-keygen -Y verify -f allowed_signers -I {PRINCIPAL} -n {NAMESPACE} -s SHA256SUMS.sig "
              "< SHA256SUMS", "# current key first; retired keys stay listed so older releases still verify"]
    lines = header + [allowed_signers_line(keys.ssh.public_key())] + retired_signers
    _write_public(keys_dir / ALLOWED_SIGNERS, "\n".join(lines) + "\n")


def init_keys(store: SecretStore, keys_dir: Path) -> SigningKeys:
    present = [n for n in (MINISIGN_SECRET, SSH_SECRET, PROVENANCE_SECRET) if store.path(n).exists()]
    if present or (keys_dir / MINISIGN_PUB).exists():
        raise ReleaseError(f"{store.directory}/{(present or [MINISIGN_SECRET])[0]} or {keys_dir}/{MINISIGN_PUB}: "
                           "signing keys exist already; keep them, or replace them with: velofarm keys rotate")
    keys = generate_keys()
    install_keys(keys, store, keys_dir, [])
    return keys


def rotate_keys(store: SecretStore, keys_dir: Path) -> SigningKeys:
    """New keys; the old public keys move to keys/retired/ and stay trusted for old releases.
    Works from the public files alone, so a lost or leaked private key can be replaced."""
    for name in (MINISIGN_PUB, SSH_PUB, PROVENANCE_PUB, ALLOWED_SIGNERS):
        _public_file(keys_dir, name)  # every public file present, or nothing is touched
    old_id, _ = parse_minisign_public(_public_file(keys_dir, MINISIGN_PUB), str(keys_dir / MINISIGN_PUB))
    old_provenance = serialization.load_pem_public_key(_public_file(keys_dir, PROVENANCE_PUB).encode())
    if not isinstance(old_provenance, ec.EllipticCurvePublicKey):
        raise ReleaseError(f"{keys_dir / PROVENANCE_PUB}: not an ECDSA public key")
    signers = _public_file(keys_dir, ALLOWED_SIGNERS).splitlines()
    retired = keys_dir / RETIRED
    retired.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    for name, new in ((MINISIGN_PUB, f"minisign-{minisign_key_id_hex(old_id)}.pub"),
                      (PROVENANCE_PUB, f"provenance-{provenance_key_id(old_provenance)[:16]}.pub"),
                      (SSH_PUB, f"ssh-{stamp}.pub")):
        os.replace(keys_dir / name, retired / new)
    for name in (MINISIGN_SECRET, SSH_SECRET, PROVENANCE_SECRET):
        store.path(name).unlink(missing_ok=True)  # replaced below, even when others could read them
    kept = [line for line in signers if line.strip() and not line.startswith("#")]
    keys = generate_keys()
    install_keys(keys, store, keys_dir, [f"# retired {stamp}"] + kept)
    return keys


def _secret_text(store: SecretStore, name: str) -> str:
    path = store.path(name)
    if not path.is_file():
        raise ReleaseError(f"{path}: signing key is missing; {INIT_FIX} (or copy the farm's keys into "
                           f"{store.directory}, mode 0600)")
    try:
        store.check()
    except SpecError as exc:
        raise ReleaseError(f"{exc}; a signing key others can read must be treated as leaked: "
                           "velofarm keys rotate") from None
    return path.read_text(encoding="utf-8")


def load_signing_keys(store: SecretStore, keys_dir: Path) -> SigningKeys:
    """The private keys, each checked against its public key in keys/; ReleaseError naming the file."""
    key_id, minisign = parse_minisign_secret(_secret_text(store, MINISIGN_SECRET), str(store.path(MINISIGN_SECRET)))
    try:
        ssh = serialization.load_ssh_private_key(_secret_text(store, SSH_SECRET).encode(), None)
        provenance = serialization.load_pem_private_key(_secret_text(store, PROVENANCE_SECRET).encode(), None)
    except ValueError as exc:
        raise ReleaseError(f"{store.directory}: {SSH_SECRET} or {PROVENANCE_SECRET} is not a key ({exc}); "
                           "velofarm keys rotate") from None
    if not isinstance(ssh, Ed25519PrivateKey) or not isinstance(provenance, ec.EllipticCurvePrivateKey):
        raise ReleaseError(f"{store.directory}: {SSH_SECRET} must be Ed25519 and {PROVENANCE_SECRET} ECDSA P-256")
    keys = SigningKeys(key_id, minisign, ssh, provenance)
    _check_matches_public(keys, keys_dir)
    return keys


def _public_file(keys_dir: Path, name: str) -> str:
    path = keys_dir / name
    if not path.is_file():
        raise ReleaseError(f"{path}: public key is missing; commit the keys/ folder velofarm keys init wrote, "
                           f"or {INIT_FIX}")
    return path.read_text(encoding="utf-8")


def _check_matches_public(keys: SigningKeys, keys_dir: Path) -> None:
    """Signing with a key users do not have would publish a release nobody can verify."""
    fix = "the secrets folder and keys/ belong to different farms: restore the matching pair, or velofarm keys rotate"
    pub_id, pub = parse_minisign_public(_public_file(keys_dir, MINISIGN_PUB), str(keys_dir / MINISIGN_PUB))
    if pub_id != keys.minisign_id or _raw(pub) != _raw(keys.minisign.public_key()):
        raise ReleaseError(f"{keys_dir / MINISIGN_PUB}: does not match the secret key {MINISIGN_SECRET}; {fix}")
    if _public_file(keys_dir, SSH_PUB).split()[:2] != ssh_public_line(keys.ssh.public_key()).split()[:2]:
        raise ReleaseError(f"{keys_dir / SSH_PUB}: does not match the secret key {SSH_SECRET}; {fix}")
    if allowed_signers_line(keys.ssh.public_key()) not in _public_file(keys_dir, ALLOWED_SIGNERS).splitlines():
        raise ReleaseError(f"{keys_dir / ALLOWED_SIGNERS}: does not list the signing key {SSH_SECRET}; {fix}")
    if _public_file(keys_dir, PROVENANCE_PUB).strip() != _pem_public(keys.provenance.public_key()).strip():
        raise ReleaseError(f"{keys_dir / PROVENANCE_PUB}: does not match the secret key {PROVENANCE_SECRET}; {fix}")


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# ----------------------------------------------------------------------------- what a verifier trusts

def load_trusted_keys(keys_dir: Path | None = None, key_files: list[Path] | None = None) -> TrustedKeys:
    """Every public key in keys/ (current and retired) plus any --key file, each recognised by its format."""
    files = list(key_files or [])
    if keys_dir is not None:
        if not keys_dir.is_dir():
            raise ReleaseError(f"{keys_dir}: no such keys folder; pass the farm's keys/ with --keys DIR "
                               "or a public key with --key FILE")
        files += sorted(p for p in [*keys_dir.iterdir(), *(keys_dir / RETIRED).glob("*")]
                        if p.is_file() and not p.name.startswith("."))
    trusted = TrustedKeys()
    for path in files:
        _add_trusted(trusted, path)
    return trusted


def _add_trusted(trusted: TrustedKeys, path: Path) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"{path}: cannot read the public key ({exc})") from None
    if "-----BEGIN PUBLIC KEY-----" in text:
        public = serialization.load_pem_public_key(text.encode())
        if not isinstance(public, ec.EllipticCurvePublicKey):
            raise ReleaseError(f"{path}: not an ECDSA public key (the provenance key is P-256)")
        trusted.provenance[provenance_key_id(public)] = public
    elif "minisign public key" in text or text.strip().startswith("RW"):
        key_id, minisign = parse_minisign_public(text, str(path))
        trusted.minisign[key_id] = minisign
    elif "ssh-ed25519 " in text:
        for line in text.splitlines():
            if _ssh_line_trusted(line):
                blob = "ssh-ed25519 " + line.split("ssh-ed25519 ", 1)[1].split()[0]
                public = serialization.load_ssh_public_key(blob.encode())
                if isinstance(public, Ed25519PublicKey) and _raw(public) not in {_raw(k) for k in trusted.ssh}:
                    trusted.ssh.append(public)


def _ssh_line_trusted(line: str) -> bool:
    """An ssh.pub line, or an allowed_signers line for PRINCIPAL whose namespaces include NAMESPACE
    (as ssh-keygen -Y verify -I PRINCIPAL -n NAMESPACE would accept it)."""
    if line.startswith("ssh-ed25519 "):
        return True
    if line.startswith("#") or "ssh-ed25519 " not in line:
        return False
    principals, options = line.split(" ", 1)[0], line.split("ssh-ed25519 ", 1)[0]
    if PRINCIPAL not in principals.split(","):
        return False
    return "namespaces=" not in options or NAMESPACE in options.split("namespaces=", 1)[1].split()[0]
