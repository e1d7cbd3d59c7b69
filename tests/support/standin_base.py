"""What the GitHub and Gitea stand-ins share, where it is the same code: the fault queue, the record
of each request, the loopback servers' life, paging a list, and cutting or draining a connection.

What each forge says stays in its own stand-in: the routes, the API description every request and
answer is validated against, the faults' answers, the JSON, and how the forge behaves.
"""

from __future__ import annotations

import socket
import struct
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOLD_AT_MOST = 600.0  # seconds a held request waits for Fault.release()


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Seen:
    """One request as the stand-in saw it."""

    method: str
    path: str
    kind: str
    at: float  # time.monotonic()
    query: dict[str, Any] = field(default_factory=dict)  # GitHub's: one value each; Gitea's: lists
    body: Any = None
    raw: bytes = b""  # the body as sent (Gitea's stand-in parses it after the fault is taken)
    status: int = 0  # -1: the connection was cut
    request: Any = None  # the MockRequest that passed validation (GitHub's stand-in)


@dataclass
class Fault:
    """One injected fault: it fires on the (skip+1)-th request of its kind, `times` times; `after`
    applies the request first and then fails the answer (the write went through, the client never heard)."""

    kind: str
    action: str
    after: bool = False
    skip: int = 0
    times: int = 1
    fired: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)  # what was sent, for assertions
    held: threading.Event = field(default_factory=threading.Event)  # "hold": a request is waiting
    go: threading.Event = field(default_factory=threading.Event)

    def hold(self) -> None:
        """A "hold" fault: called by the stand-in while it holds the request, until release()."""
        self.held.set()
        self.go.wait(HOLD_AT_MOST)

    def release(self) -> None:
        self.go.set()

    @property
    def damages(self) -> bool:
        """The request is applied, its stored result damaged, and the answer looks normal."""
        return self.action in ("corrupt", "truncate")

    def answered(self, status: int, headers: dict[str, str], at: float) -> None:
        self.answers.append({"status": status, "headers": dict(headers), "sent_at": at})


class Faults:
    """A queue of faults of the given kinds and actions; thread-safe because a stand-in serves
    requests on threads."""

    def __init__(self, kinds: set[str], actions: set[str]) -> None:
        self.kinds, self.actions = kinds, actions
        self.queue: list[Fault] = []
        self.all: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: str, action: str, *, after: bool = False, skip: int = 0, times: int = 1) -> Fault:
        if kind not in self.kinds or action not in self.actions:
            raise ValueError(f"unknown fault {kind}/{action}")
        fault = Fault(kind, action, after, skip, times)
        with self._lock:
            self.queue.append(fault)
            self.all.append(fault)
        return fault

    def take(self, kind: str) -> Fault | None:
        """The fault this request meets, if any (a skipping fault lets the request through)."""
        with self._lock:
            for fault in self.queue:
                if fault.kind not in (kind, "any"):
                    continue
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.fired += 1
                if fault.fired >= fault.times:
                    self.queue.remove(fault)
                return fault
        return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self.queue)


def page_of(items: list[Any], page: int, size: int, url: str, query: Mapping[str, object]) -> tuple[list[Any], str]:
    """One page of a list and its Link header ("" for a single page), as both forges page: `url`
    with `query` and the page number, rel next/last/first/prev."""
    last = max(1, -(-len(items) // size))
    links = {"next": page + 1, "last": last} if page < last else {}
    links |= {"first": 1, "prev": page - 1} if page > 1 else {}
    link = ", ".join(f'<{url}?{urllib.parse.urlencode({**query, "page": n})}>; rel="{rel}"'
                     for rel, n in links.items())
    return items[(page - 1) * size: page * size], link


class StandInServers:
    """A stand-in's life on 127.0.0.1 (one threaded server per host it plays) and its request record."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.requests: list[Seen] = []
        self.validation_errors: list[str] = []
        self.publishes: list[dict[str, Any]] = []  # the assets each release had when it was published
        self.incomplete_publishes: list[str] = []
        self._lock = threading.RLock()
        self._servers: list[ThreadingHTTPServer] = []

    def start(self, hosts: tuple[str, ...]) -> list[int]:
        """Serve each host on a free port; `serve(handler)` answers every request. The ports, in order."""
        for host in hosts:
            handler = type(f"{host}Handler", (Handler,), {"standin": self, "host": host})
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True,
                             name=f"standin-{host}").start()
            self._servers.append(server)
        return [s.server_address[1] for s in self._servers]

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def serve(self, h: Handler) -> None:
        raise NotImplementedError

    def record(self, seen: Seen) -> Seen:
        with self._lock:
            self.requests.append(seen)
        return seen

    def writes(self) -> list[Seen]:
        return [s for s in self.requests if s.method != "GET" and s.kind != "download"]


def drain(h: BaseHTTPRequestHandler, length: int) -> None:
    """Read what the client still sends, so that the answer reaches it."""
    while length > 0 and (chunk := h.rfile.read(min(length, 1 << 20))):
        length -= len(chunk)


def drop(h: BaseHTTPRequestHandler) -> None:
    """Cut the connection with a reset, no answer (as a proxy or a broken upstream does)."""
    h.close_connection = True
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def send(h: BaseHTTPRequestHandler, seen: Seen, status: int, headers: dict[str, str], data: bytes) -> None:
    """Send the answer as given (the caller decides the headers, Content-Length included)."""
    seen.status = status
    h.send_response(status)
    for key, value in headers.items():
        h.send_header(key, value)
    h.end_headers()
    h.wfile.write(data)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    standin: StandInServers
    host: str

    def do_GET(self) -> None:
        self.standin.serve(self)

    do_POST = do_PATCH = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass
