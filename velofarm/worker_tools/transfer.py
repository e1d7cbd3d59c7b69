#!/usr/bin/env python3
"""Send a release archive to the master's upload receiver: streamed, checked, resumable.

Standard library only, Python 3.9+: the master sends it to each worker in the tools bundle
(../tools/velofarm-tools.pyz) and runs it with the worker's own Python; the build's upload step
gives no ARCHIVE.sha256, so this one process hashes the archive and sends it.

    transfer.py upload --url URL --token-file FILE|- ARCHIVE [ARCHIVE.sha256]

One HTTP PUT per archive, the body sent with sendfile(2). Buildbot's FileUpload waits one round
trip per block; this waits a few round trips in all, so a 50 ms link costs ~0.15 s, not 5 s per
100 MiB. The expected SHA-256 (read from ARCHIVE.sha256, else computed) travels in a Repr-Digest
header (RFC 9530); the master hashes while receiving, refuses a mismatch, and writes the
.sha256 beside the archive itself. After a dropped connection the script asks how much arrived
(HEAD -> Upload-Offset) and sends the rest with Content-Range. The per-build token comes from a
file or stdin, never from the command line, so it cannot appear in a step log or `ps`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import ssl
import sys
import time
from collections.abc import Callable
from typing import NamedTuple, NoReturn
from urllib.parse import quote, urlsplit

CHUNK = 1024 * 1024
ATTEMPTS = 6
TIMEOUT = 60.0
SUMS_LINE = re.compile(r"^([0-9a-f]{64})  ([^/\\\n]+)\n$")
# Worth another attempt: the connection or the master hiccupped, the bytes so far are kept.
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
DIGEST_MISMATCH = 422


class TransferError(Exception):
    """An upload that retrying cannot fix; the message names the file and what to do."""


class Endpoint(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str  # prefix ending in '/', the file name is appended


class Receipt(NamedTuple):
    name: str
    size: int
    sha256: str
    seconds: float
    attempts: int
    resumed_from: int  # bytes the master already had when the last attempt started


def read_token(source: str) -> str:
    """The upload token from a file, or from the first line of stdin for '-'."""
    try:
        if source == "-":
            text = sys.stdin.readline()
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise TransferError(f"token file {source}: {exc.strerror}; the build's upload step "
                            "writes it") from None
    token = text.strip()
    if not token:
        raise TransferError(f"token {'on stdin' if source == '-' else 'file ' + source} is empty; "
                            "re-run the build so the master grants a new one")
    return token


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def expected_sha256(archive: str, sums: str | None) -> str:
    """The worker's SHA-256 of the archive: from its .sha256 line when given, else computed."""
    if sums is None:
        return file_sha256(archive)
    try:
        with open(sums, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise TransferError(f"{sums}: {exc.strerror}; run pack.py checksum first") from None
    match = SUMS_LINE.match(text)
    if not match:
        raise TransferError(f"{sums}: not a '<64 lowercase hex>  <file name>' line; "
                            "run pack.py checksum again")
    if match.group(2) != os.path.basename(archive):
        raise TransferError(f"{sums}: names '{match.group(2)}', not '{os.path.basename(archive)}'")
    return match.group(1)


def digest_header(hexdigest: str) -> str:
    """RFC 9530 Repr-Digest value: the SHA-256 of the whole file, whatever range is sent."""
    return "sha-256=:" + base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii") + ":"


def parse_url(url: str) -> Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TransferError(f"upload URL '{url}' is not http(s)://HOST[:PORT]/PATH; "
                            "check the master's upload_url")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Endpoint(parts.scheme, parts.hostname, port, parts.path.rstrip("/") + "/")


def open_connection(ep: Endpoint, timeout: float, ca_file: str | None = None) -> http.client.HTTPConnection:
    """An HTTP(S) connection; https checks the master's certificate against `ca_file` (the farm's
    own CA, from the bootstrap) or, without one, the system's trusted CAs."""
    if ep.scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(ep.host, ep.port, timeout=timeout,
                                                                       context=context)
    else:
        conn = http.client.HTTPConnection(ep.host, ep.port, timeout=timeout)
    conn.connect()
    return conn


def ask_offset(conn: http.client.HTTPConnection, ep: Endpoint, name: str,
               token: str) -> tuple[int, str | None]:
    """(bytes the master holds, its Repr-Digest if the file is complete). Also stops any older
    attempt still writing on a half-open connection, so the offset cannot move afterwards."""
    conn.request("HEAD", ep.path + quote(name), headers={"Authorization": f"Bearer {token}"})
    resp = conn.getresponse()
    resp.read()
    if resp.status != 200:
        raise_for(resp.status, resp.reason, name)
    complete = resp.getheader("Upload-Complete") == "?1"
    return int(resp.getheader("Upload-Offset") or 0), resp.getheader("Repr-Digest") if complete else None


def send_body(conn: http.client.HTTPConnection, path: str, offset: int, count: int) -> None:
    sock = conn.sock
    if count <= 0:  # everything arrived but the receipt was lost: an empty resume (sendfile refuses 0)
        return
    with open(path, "rb") as fh:
        if not isinstance(conn, http.client.HTTPSConnection):
            sock.sendfile(fh, offset, count)  # zero-copy; falls back to send() where unsupported
            return
        fh.seek(offset)
        while count > 0:
            block = fh.read(min(CHUNK, count))
            if not block:
                raise TransferError(f"{path}: shrank while being sent; do not touch dist/ during a build")
            sock.sendall(block)
            count -= len(block)


def put(conn: http.client.HTTPConnection, ep: Endpoint, path: str, token: str, digest: str,
        size: int, offset: int) -> tuple[int, str, bytes]:
    """One PUT of bytes [offset, size); (status, reason, body) of the master's answer."""
    conn.putrequest("PUT", ep.path + quote(os.path.basename(path)), skip_accept_encoding=True)
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size - offset))
    conn.putheader("Repr-Digest", digest_header(digest))
    if offset:
        conn.putheader("Content-Range", f"bytes {offset}-{size - 1}/{size}")
    conn.endheaders()
    try:
        send_body(conn, path, offset, size - offset)
    except OSError:
        pass  # the master may have answered early (403, 409) and closed: read that answer below
    resp = conn.getresponse()
    return resp.status, resp.reason, resp.read()


def raise_for(status: int, reason: str, name: str, body: bytes = b"") -> NoReturn:
    """Turn a final refusal into a TransferError a person can act on."""
    detail = body.decode("utf-8", "replace").strip()[:300] or reason
    hints = {403: "the token is wrong, expired or revoked: the upload step that granted it has ended; "
                  "re-run the build",
             404: "the master did not grant this file name to this build",
             413: "the archive is larger than the master accepts"}
    raise TransferError(f"{name}: the master refused the upload ({status} {detail})"
                        + (f"; {hints[status]}" if status in hints else ""))


def upload_file(url: str, token: str, path: str, digest: str, emit: Callable[[str], None],
                attempts: int = ATTEMPTS, timeout: float = TIMEOUT, backoff: float = 0.5,
                ca_file: str | None = None) -> Receipt:
    """Upload one file, resuming after dropped connections; the master's receipt on success."""
    ep, name, size = parse_url(url), os.path.basename(path), os.path.getsize(path)
    start, offset, ask, restarted, last = time.monotonic(), 0, False, False, ""
    for attempt in range(1, attempts + 1):
        try:
            conn = open_connection(ep, timeout, ca_file)
            try:
                if ask:
                    offset, complete = ask_offset(conn, ep, name, token)
                    if complete == digest_header(digest):  # it all arrived; only the answer was lost
                        return Receipt(name, size, digest, time.monotonic() - start, attempt, offset)
                status, reason, body = put(conn, ep, path, token, digest, size, offset)
            finally:
                conn.close()
        except ssl.SSLCertVerificationError as exc:  # retrying cannot make the certificate trusted
            raise TransferError(f"{ep.host}:{ep.port}: the master's certificate is not trusted "
                                f"({exc.verify_message}); pass the farm's CA with --ca-file") from None
        except (OSError, http.client.HTTPException) as exc:
            last, ask = f"{type(exc).__name__}: {exc}", True
        else:
            if status in (200, 201):
                sha = json.loads(body)["sha256"]
                return Receipt(name, size, sha, time.monotonic() - start, attempt, offset)
            if status == DIGEST_MISMATCH and not restarted:
                restarted, ask, offset = True, False, 0  # damaged on the way: one clean restart
            elif status in RETRY_STATUS:
                ask = True
            else:
                raise_for(status, reason, name, body)
            last = f"{status} {body.decode('utf-8', 'replace').strip()[:200] or reason}"
        if attempt < attempts:
            delay = min(backoff * 2 ** (attempt - 1), 10.0)
            emit(f"{name}: attempt {attempt} of {attempts} failed ({last}); retrying in {delay:.1f} s")
            time.sleep(delay)
    raise TransferError(f"{name}: gave up after {attempts} attempts ({last}); check that this worker "
                        f"reaches {ep.host}:{ep.port} (the master's upload port)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="transfer.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upload", help="send an archive to the master's upload receiver")
    up.add_argument("--url", required=True, help="the receiver's URL, e.g. http://master:8011/upload/")
    up.add_argument("--token-file", required=True, help="a file holding the upload token, or - for stdin")
    up.add_argument("--ca-file", help="the CA that signed the master's certificate (https upload URLs)")
    up.add_argument("archive")
    up.add_argument("sums", nargs="?", help="ARCHIVE.sha256 from pack.py checksum (else it is computed)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        token = read_token(args.token_file)
        if not os.path.isfile(args.archive):
            raise TransferError(f"{args.archive}: no such file; the archive step should have written it")
        digest = expected_sha256(args.archive, args.sums)
        # The hash this upload sends (Repr-Digest), as a sha256sum line: the log shows what the worker computed.
        print(f"{digest}  {os.path.basename(args.archive)}", flush=True)
        if args.ca_file and not os.path.isfile(args.ca_file):
            raise TransferError(f"{args.ca_file}: no such CA file; copy the farm's CA here (bootstrap --ca-file)")
        receipt = upload_file(args.url, token, args.archive, digest, emit=lambda m: print(m, file=sys.stderr),
                              ca_file=args.ca_file)
    except TransferError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rate = receipt.size / max(receipt.seconds, 1e-9) / 2**20
    print(f"sent {receipt.name}: {receipt.size} bytes in {receipt.seconds:.2f} s ({rate:.0f} MiB/s), "
          f"{receipt.attempts} attempt(s); the master verified SHA-256 {receipt.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
