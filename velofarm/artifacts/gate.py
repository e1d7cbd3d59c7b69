"""Who may hold a connection to the upload port, and for how long (no network code, no Buildbot).

The port is reachable by anyone who can reach the master's PB port, so a stranger must not be
able to hold it: the upload receiver asks this gate before serving each connection.

- A request head (request line and headers, up to the token check) must arrive whole within
  HEAD_DEADLINE seconds and MAX_HEAD_BYTES bytes: a byte every few seconds does not keep a slot.
- One address holds at most MAX_PER_PEER connections.
- Connections that have not yet shown a valid token hold at most MAX_STRANGERS slots; when they
  are full, the oldest of them is closed for the newcomer (a worker sends its head at once, so it
  reaches the token check before a flood can push it out), and a connection with a valid token
  moves to the room kept for workers.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

HEAD_DEADLINE = 10.0
MAX_HEAD_BYTES = 16 * 1024
MAX_CONNECTIONS = 64
MAX_STRANGERS = 32
MAX_PER_PEER = 8


@dataclass
class Seat:
    sock: socket.socket
    peer: str
    deadline: float | None  # while a head is awaited; None once the token was shown
    trusted: bool = False  # a valid token was shown on this connection


class ConnectionGate:
    """Thread-safe bookkeeping of the receiver's connections, with a reaper for late heads."""

    def __init__(self, log: Callable[[str], None], head_deadline: float = HEAD_DEADLINE,
                 max_connections: int = MAX_CONNECTIONS, max_strangers: int = MAX_STRANGERS,
                 max_per_peer: int = MAX_PER_PEER, clock: Callable[[], float] = time.monotonic) -> None:
        self.log, self.clock = log, clock
        self.head_deadline, self.max_connections = head_deadline, max_connections
        self.max_strangers, self.max_per_peer = max_strangers, max_per_peer
        self._lock = threading.Lock()
        self._seats: OrderedDict[int, Seat] = OrderedDict()  # oldest first
        self._stop = threading.Event()

    def admit(self, sock: socket.socket, peer: str) -> bool:
        """Seat a new connection (True), or refuse it (False: the caller closes it)."""
        evicted: Seat | None = None
        with self._lock:
            if sum(s.peer == peer for s in self._seats.values()) >= self.max_per_peer:
                self.log(f"velofarm uploads: refused a connection from {peer}: {self.max_per_peer} already open")
                return False
            strangers = [s for s in self._seats.values() if not s.trusted]
            if len(strangers) >= self.max_strangers:
                evicted = strangers[0]
                del self._seats[id(evicted.sock)]
            elif len(self._seats) >= self.max_connections:
                self.log(f"velofarm uploads: refused a connection from {peer}: all {self.max_connections} slots "
                         "are held by workers")
                return False
            self._seats[id(sock)] = Seat(sock, peer, self.clock() + self.head_deadline)
        if evicted is not None:
            self.log(f"velofarm uploads: closed the oldest connection without a token (from {evicted.peer}) "
                     f"to make room for {peer}")
            _close(evicted.sock)
        return True

    def awaiting_head(self, sock: socket.socket) -> None:
        """A (next) request head is awaited on this connection: its deadline starts now."""
        with self._lock:
            seat = self._seats.get(id(sock))
            if seat is not None:
                seat.deadline = self.clock() + self.head_deadline

    def head_done(self, sock: socket.socket, trusted: bool) -> None:
        """The head arrived; `trusted` when it carried a valid token."""
        with self._lock:
            seat = self._seats.get(id(sock))
            if seat is not None:
                seat.deadline = None
                seat.trusted = seat.trusted or trusted

    def leave(self, sock: socket.socket) -> None:
        with self._lock:
            self._seats.pop(id(sock), None)

    def counts(self) -> tuple[int, int]:
        """(connections, of which strangers): for tests and logs."""
        with self._lock:
            return len(self._seats), sum(not s.trusted for s in self._seats.values())

    def reap(self) -> int:
        """Close every connection whose head is late; returns how many."""
        now = self.clock()
        with self._lock:
            late = [s for s in self._seats.values() if s.deadline is not None and now > s.deadline]
            for seat in late:
                del self._seats[id(seat.sock)]
        for seat in late:
            self.log(f"velofarm uploads: closed a connection from {seat.peer}: no complete request head "
                     f"within {self.head_deadline:.0f} s")
            _close(seat.sock)
        return len(late)

    def run_reaper(self, every: float = 0.25) -> None:
        """Reap until stop(); run in a daemon thread."""
        while not self._stop.wait(every):
            self.reap()

    def stop(self) -> None:
        self._stop.set()


def _close(sock: socket.socket) -> None:
    """Wake the handler blocked on this socket (its read returns end-of-file) and free the slot."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
