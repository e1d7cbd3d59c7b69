"""Detached signatures of SHA256SUMS in the two formats users have tools for: minisign and OpenSSH.

Both are Ed25519 (deterministic: the same file and key give the same bytes). The formats are
assembled here from `cryptography`'s Ed25519 and `hashlib`; nothing cryptographic is hand-rolled.
  minisign   https://jedisct1.github.io/minisign/ (signature format; "ED" = BLAKE2b-512 prehashed)
  sshsig     OpenSSH PROTOCOL.sshsig (armoured "SSH SIGNATURE", namespace-bound, SHA-512)
"""

from __future__ import annotations

import base64
import hashlib
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from velofarm.errors import ReleaseError
from velofarm.release.keys import minisign_key_id_hex

MINISIGN_UNTRUSTED = "untrusted comment: signature from velofarm secret key"
SSHSIG_BEGIN, SSHSIG_END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"


# ----------------------------------------------------------------------------- minisign

def minisign_sign(key_id: bytes, key: Ed25519PrivateKey, data: bytes, trusted_comment: str) -> str:
    """A `.minisig` for `data`, prehashed (what minisign 0.10+ writes and verifies by default)."""
    if "\n" in trusted_comment or "\r" in trusted_comment:
        raise ReleaseError("minisign trusted comment: must be one line")
    signature = key.sign(hashlib.blake2b(data, digest_size=64).digest())
    global_signature = key.sign(signature + trusted_comment.encode())
    return (f"{MINISIGN_UNTRUSTED}\n{base64.b64encode(b'ED' + key_id + signature).decode()}\n"
            f"trusted comment: {trusted_comment}\n{base64.b64encode(global_signature).decode()}\n")


def minisign_verify(text: str, data: bytes, keys: dict[bytes, Ed25519PublicKey], where: str) -> str:
    """The trusted comment of a valid signature by one of `keys`; ReleaseError saying what is wrong."""
    lines = text.split("\n")
    if len(lines) < 4 or not lines[0].startswith("untrusted comment:") or not lines[2].startswith("trusted comment: "):
        raise ReleaseError(f"{where}: not a minisign signature (4 lines: untrusted comment, signature, "
                           "trusted comment, global signature)")
    try:
        blob, global_signature = base64.b64decode(lines[1], validate=True), base64.b64decode(lines[3], validate=True)
    except ValueError:
        raise ReleaseError(f"{where}: signature lines are not base64") from None
    if len(blob) != 74 or blob[:2] not in (b"ED", b"Ed") or len(global_signature) != 64:
        raise ReleaseError(f"{where}: malformed minisign signature")
    key_id, signature = blob[2:10], blob[10:]
    public = keys.get(key_id)
    if public is None:
        raise ReleaseError(f"{where}: signed by key {minisign_key_id_hex(key_id)}, which is not among the trusted "
                           "keys; pass the farm's keys/ folder (--keys) or its minisign.pub (--key)")
    message = hashlib.blake2b(data, digest_size=64).digest() if blob[:2] == b"ED" else data
    comment = lines[2].removeprefix("trusted comment: ")
    try:
        public.verify(signature, message)
    except InvalidSignature:
        raise ReleaseError(f"{where}: signature does not match the file it signs (either was changed)") from None
    try:
        public.verify(global_signature, signature + comment.encode())
    except InvalidSignature:
        raise ReleaseError(f"{where}: the trusted comment was changed after signing") from None
    return comment


# ----------------------------------------------------------------------------- OpenSSH (sshsig)

def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _signed_data(namespace: str, data: bytes) -> bytes:
    return b"SSHSIG" + _string(namespace.encode()) + _string(b"") + _string(b"sha512") + \
        _string(hashlib.sha512(data).digest())


def _ssh_public_blob(public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _string(b"ssh-ed25519") + _string(raw)


def sshsig_sign(key: Ed25519PrivateKey, data: bytes, namespace: str) -> str:
    """What `ssh-keygen -Y sign -n NAMESPACE` writes for an Ed25519 key (byte for byte)."""
    signature = _string(b"ssh-ed25519") + _string(key.sign(_signed_data(namespace, data)))
    blob = (b"SSHSIG" + struct.pack(">I", 1) + _string(_ssh_public_blob(key.public_key())) +
            _string(namespace.encode()) + _string(b"") + _string(b"sha512") + _string(signature))
    text = base64.b64encode(blob).decode()
    body = "\n".join(text[i:i + 70] for i in range(0, len(text), 70))
    return f"{SSHSIG_BEGIN}\n{body}\n{SSHSIG_END}\n"


def _read_strings(blob: bytes, count: int, where: str) -> list[bytes]:
    out, at = [], 0
    for _ in range(count):
        if at + 4 > len(blob):
            raise ReleaseError(f"{where}: truncated SSH signature")
        (size,) = struct.unpack(">I", blob[at:at + 4])
        out.append(blob[at + 4:at + 4 + size])
        at += 4 + size
    if at != len(blob):
        raise ReleaseError(f"{where}: trailing bytes in SSH signature")
    return out


def sshsig_verify(text: str, data: bytes, namespace: str, keys: list[Ed25519PublicKey], where: str) -> None:
    """ReleaseError unless `text` is a valid `namespace` signature of `data` by one of `keys`."""
    body = text.strip()
    if not body.startswith(SSHSIG_BEGIN) or not body.endswith(SSHSIG_END):
        raise ReleaseError(f"{where}: not an armoured SSH signature ({SSHSIG_BEGIN})")
    try:
        blob = base64.b64decode("".join(body[len(SSHSIG_BEGIN):-len(SSHSIG_END)].split()), validate=True)
    except ValueError:
        raise ReleaseError(f"{where}: SSH signature is not base64") from None
    if blob[:6] != b"SSHSIG" or blob[6:10] != struct.pack(">I", 1):
        raise ReleaseError(f"{where}: not an SSHSIG version 1 signature")
    public_blob, signed_ns, _reserved, hash_alg, signature = _read_strings(blob[10:], 5, where)
    if signed_ns.decode(errors="replace") != namespace:
        raise ReleaseError(f"{where}: signed for namespace '{signed_ns.decode(errors='replace')}', "
                           f"not '{namespace}'")
    if hash_alg != b"sha512":
        raise ReleaseError(f"{where}: hash '{hash_alg.decode(errors='replace')}' (velofarm signs with sha512)")
    public = next((k for k in keys if _ssh_public_blob(k) == public_blob), None)
    if public is None:
        raise ReleaseError(f"{where}: signed by a key not in allowed_signers; pass the farm's keys/ folder "
                           "(--keys) or its allowed_signers (--key)")
    sig_type, raw = _read_strings(signature, 2, where)
    if sig_type != b"ssh-ed25519":
        raise ReleaseError(f"{where}: signature type {sig_type.decode(errors='replace')} is not ssh-ed25519")
    try:
        public.verify(raw, _signed_data(namespace, data))
    except InvalidSignature:
        raise ReleaseError(f"{where}: signature does not match the file it signs (either was changed)") from None
