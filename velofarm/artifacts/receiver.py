"""The upload receiver: workers PUT archives over HTTP straight into the artifact store.

Core, no Buildbot: velofarm.buildmaster.uploads runs it inside the master and grants tokens;
velofarm/incoming.py holds the grants and writes the files. Buildbot's FileUpload waits one PB
round trip per block (at most 640 KiB): ~130 MiB/s on loopback, ~5 MiB/s over a 50 ms link.
Here each archive is one streamed HTTP PUT (velofarm/worker_tools/transfer.py on the worker) to a small
server inside the master process:

- Authenticated by a random token that UploadArtifact grants right before the upload and revokes
  right after. The token names the only file a build may send and the folder it lands in; nothing
  in a request chooses a path, so nothing outside the artifact store can be written.
- Hashed while receiving and compared with the worker's SHA-256 (Repr-Digest header) before the
  file is fsynced and renamed into place: the store's check costs no second read.
- Written to disk as it arrives, through four 1 MiB buffers a connection: master memory stays flat.
- Resumable: HEAD tells a worker how much arrived; a PUT with Content-Range sends the rest.
- Not lockable by strangers: velofarm/artifacts/gate.py bounds each request head in time and size,
  caps connections per address, and keeps room for connections that showed a valid token.

Threads, not twisted.web: twisted.web spools a whole request body into a temporary file before
render(), which would write every archive twice and hash it on the reactor thread. Blocking
sockets in daemon threads keep the reactor free (hashlib, recv and write release the GIL).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from velofarm.artifacts.gate import HEAD_DEADLINE, MAX_HEAD_BYTES, ConnectionGate
from velofarm.artifacts.incoming import (
    CHUNK,
    DISK_FULL,
    Grant,
    Put,
    RequestError,
    Slot,
    Superseded,
    UploadGrants,
    discard_full,
    finish,
    receive,
)

PATH_PREFIX = "/upload/"
IDLE_TIMEOUT = 120.0  # a silent upload is dropped; the worker resumes on a new connection
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
DIGEST = re.compile(r"(?:^|,)\s*sha-256=:([A-Za-z0-9+/]+={0,2}):")
RANGE = re.compile(r"^bytes ([0-9]+)-([0-9]+)/([0-9]+)$", re.ASCII)


def parse_put(headers: Any, max_bytes: int) -> Put:
    """What a PUT promises: its byte range and the whole file's SHA-256; RequestError if unusable."""
    if headers.get("Transfer-Encoding") or not (headers.get("Content-Length") or "").isdigit():
        raise RequestError(411, "send Content-Length (chunked bodies are not accepted)")
    length = int(headers["Content-Length"])
    match = DIGEST.search(headers.get("Repr-Digest") or "")
    try:
        raw = base64.b64decode(match.group(1), validate=True) if match else b""
    except binascii.Error:
        raw = b""
    if len(raw) != 32:
        raise RequestError(400, "send Repr-Digest: sha-256=:<base64 of the file's SHA-256>:")
    start, total = 0, length
    if headers.get("Content-Range"):
        rng = RANGE.match(headers["Content-Range"])
        first, last, size = (int(g) for g in rng.groups()) if rng else (0, -1, -1)
        if not rng or last - first + 1 != length or last + 1 != size:
            raise RequestError(400, "Content-Range must be 'bytes START-END/TOTAL', run to the file's end "
                                    "and match Content-Length")
        start, total = int(rng.group(1)), int(rng.group(3))
    if total > max_bytes:
        raise RequestError(413, f"{total} bytes is more than the {max_bytes} this master accepts")
    return Put(start, length, total, raw.hex())


def digest_header(hexdigest: str) -> str:
    return "sha-256=:" + base64.b64encode(bytes.fromhex(hexdigest)).decode("ascii") + ":"


def _no_log(message: str) -> None:
    pass


class HeadTooLarge(Exception):
    pass


class HeadBudget:
    """The connection's reader while a request head is read: at most MAX_HEAD_BYTES in all."""

    def __init__(self, raw: Any, budget: int = MAX_HEAD_BYTES) -> None:
        self.raw, self.left = raw, budget

    def readline(self, size: int = -1) -> bytes:
        limit = self.left + 1 if size < 0 else min(size, self.left + 1)
        line: bytes = self.raw.readline(limit)
        self.left -= len(line)
        if self.left < 0:
            raise HeadTooLarge()
        return line

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class UploadHandler(BaseHTTPRequestHandler):
    """HEAD → how much of a file arrived; PUT → (the rest of) a file. Nothing else."""

    protocol_version = "HTTP/1.1"
    server_version = "velofarm-uploads"
    timeout = HEAD_DEADLINE  # per read; the gate bounds the whole head
    server: ReceiverServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # outcomes are logged below, never the request line's headers (the token)

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:  # here, not in accept(): a slow handshake holds this thread (and the gate's deadline), not the port
                self.connection.do_handshake()
            except (OSError, ValueError) as exc:
                self.server.log(f"velofarm uploads: TLS handshake with {self.client_address[0]} failed "
                                f"({type(exc).__name__})")
                return
        super().handle()

    def handle_one_request(self) -> None:
        self.server.gate.awaiting_head(self.connection)
        raw, self.rfile = self.rfile, HeadBudget(self.rfile)  # type: ignore[assignment]
        try:
            super().handle_one_request()
        except HeadTooLarge:
            self.close_connection = True
            self.wfile.write(TOO_LARGE)
        finally:
            self.rfile = raw

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers through HeadBudget
        self.rfile = getattr(self.rfile, "raw", self.rfile)
        return ok

    def do_HEAD(self) -> None:
        found = self._authorize(has_body=False)
        if found is None:
            return
        slot = found[1]
        with slot.lock:
            slot.take_over()  # freeze an older writer so the offset reported stays true
            offset, receipt = slot.offset, slot.receipt
        headers = {"Upload-Offset": str(offset), "Upload-Complete": "?1" if receipt else "?0"}
        if receipt:
            headers["Repr-Digest"] = digest_header(receipt.sha256)
        self._reply(200, b"", headers, head=True)

    def do_PUT(self) -> None:
        found = self._authorize(has_body=True)
        if found is None:
            return
        grant, slot = found
        try:
            put = parse_put(self.headers, grant.max_bytes)
            with slot.lock:
                generation = slot.take_over()
                if put.start == 0:
                    slot.reset()
                elif put.start != slot.offset or slot.receipt:
                    raise RequestError(409, f"resume at byte {put.start}, but {slot.offset} arrived; "
                                            "ask again (HEAD)")
                else:
                    self.server.log(f"velofarm uploads: {slot.name}: resumed at byte {put.start}")
            receive(slot, generation, self.rfile, put)
            receipt = finish(slot, generation, put)
        except RequestError as exc:
            self._refuse(exc.status, str(exc), {"Upload-Offset": str(slot.offset)})
            return
        except (Superseded, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:  # final: resuming cannot make room
                refusal = discard_full(slot, generation)
                self.server.log(f"velofarm uploads: {slot.name}: refused: {refusal}")
                self._refuse(refusal.status, str(refusal))
                return
            # A dropped connection: the worker resumes on another.
            self.server.log(f"velofarm uploads: {slot.name}: stopped at byte {slot.offset} "
                            f"({type(exc).__name__})")
            self.close_connection = True
            return
        self.server.log(f"velofarm uploads: {slot.name}: {receipt.size} bytes, "
                        f"SHA-256 {receipt.sha256} verified")
        body = json.dumps({"name": slot.name, "size": receipt.size, "sha256": receipt.sha256}).encode()
        self._reply(201, body, {"Content-Type": "application/json"})

    def _authorize(self, has_body: bool) -> tuple[Grant, Slot] | None:
        auth = self.headers.get("Authorization") or ""
        token = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else ""
        grant = self.server.grants.find(token) if token else None
        self.server.gate.head_done(self.connection, trusted=grant is not None)
        if grant is None:  # checked before the name, so a stranger learns nothing about names
            self._refuse(403, "unknown, expired or revoked upload token", drain=has_body)
            return None
        name = unquote(self.path[len(PATH_PREFIX):]) if self.path.startswith(PATH_PREFIX) else ""
        slot = grant.slots.get(name)
        if slot is None:
            self._refuse(404, "this build's token does not cover that file", drain=has_body)
            return None
        self.connection.settimeout(IDLE_TIMEOUT)
        return grant, slot

    def _reply(self, status: int, body: bytes, headers: dict[str, str], head: bool = False) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None,
                drain: bool = True) -> None:
        self.close_connection = True
        self._reply(status, (message + "\n").encode(), {"Content-Type": "text/plain", **(headers or {})},
                    head=self.command == "HEAD")
        if drain:
            self._discard_body()

    def _discard_body(self, limit: int = 8 * CHUNK, seconds: float = 2.0) -> None:
        """Read a little of an unwanted body so the worker sees our answer rather than a reset."""
        try:
            self.wfile.flush()
            self.connection.settimeout(seconds)
            left = min(int(self.headers.get("Content-Length") or 0), limit)
            while left > 0 and (chunk := self.rfile.read1(min(left, CHUNK))):
                left -= len(chunk)
        except (OSError, ValueError):
            pass


class ReceiverServer(ThreadingHTTPServer):
    """One daemon thread per connection, each admitted by the gate."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, interface: str, port: int, grants: UploadGrants,
                 log: Callable[[str], None] = _no_log, tls: ssl.SSLContext | None = None) -> None:
        self.address_family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        self.grants, self.log, self.tls = grants, log, tls
        self.gate = ConnectionGate(log)
        super().__init__((interface, port), UploadHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall on a bad resolver.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.gate.admit(request, str(client_address[0])):
            self.shutdown_request(request)  # full: the worker retries after a pause
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.gate.leave(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.gate.leave(request)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The server side of https uploads: the master's certificate and key, TLS 1.2 or newer."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def start_receiver(interface: str, port: int, grants: UploadGrants,
                   log: Callable[[str], None] = _no_log, tls: ssl.SSLContext | None = None) -> ReceiverServer:
    """Bind and serve in a daemon thread; `server.server_port` is the port actually bound."""
    server = ReceiverServer(interface, port, grants, log, tls)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name=f"velofarm-uploads:{server.server_port}", daemon=True).start()
    threading.Thread(target=server.gate.run_reaper, name=f"velofarm-uploads-reaper:{server.server_port}",
                     daemon=True).start()
    return server


def stop_receiver(server: ReceiverServer) -> None:
    server.gate.stop()
    server.shutdown()
    server.server_close()
