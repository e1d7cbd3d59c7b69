"""Finding 1: the upload port cannot be locked by strangers (real slow-loris sockets on loopback).

Each attacker connection sends a request head one byte at a time, as the review's experiment did.
Attackers connect from other loopback addresses (127.0.0.10 ...), the worker from 127.0.0.1.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_transfer import NAME, Receiver, make_archive

from velofarm.artifacts import gate
from velofarm.artifacts.incoming import UploadGrants
from velofarm.artifacts.receiver import start_receiver, stop_receiver
from velofarm.cli.localfarm import wait_for
from velofarm.worker_tools import transfer


class Loris:
    """Connections that trickle a request head, one byte every `every` seconds, until stopped."""

    def __init__(self, port: int, sources: list[str], every: float = 0.5) -> None:
        self.socks: list[socket.socket] = []
        for source in sources:
            sock = socket.socket()
            sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            self.socks.append(sock)
        self.every, self._stop = every, threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)
        self._thread.start()

    def _trickle(self) -> None:
        head = b"PUT /upload/" + NAME.encode() + b" HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
        for i in range(len(head)):
            if self._stop.wait(self.every):
                return
            for sock in self.socks:
                try:
                    sock.send(head[i:i + 1])
                except OSError:
                    pass

    def closed_by_server(self) -> int:
        count = 0
        for sock in self.socks:
            readable, _, _ = select.select([sock], [], [], 0)
            try:
                if readable and sock.recv(1, socket.MSG_PEEK) == b"":
                    count += 1
            except OSError:
                count += 1
        return count

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    server = start_receiver("127.0.0.1", 0, UploadGrants())
    yield Receiver(server.grants, server.server_port, tmp_path / "artifacts")
    stop_receiver(server)


def sources(first: int, count: int) -> list[str]:
    return [f"127.0.0.{i}" for i in range(first, first + count)]


def test_a_worker_uploads_while_slow_loris_connections_hold_every_stranger_slot(receiver: Receiver,
                                                                               tmp_path: Path) -> None:
    loris = Loris(receiver.port, sources(10, gate.MAX_STRANGERS + 8))
    try:
        time.sleep(1.5)  # every attacker is connected and trickling
        archive, digest = make_archive(tmp_path / "dist", 2 * 1024 * 1024 + 5)
        token, folder = receiver.grant()
        # Few attempts and short pauses: the worker must get in, not merely outlast the attack.
        receipt = transfer.upload_file(receiver.url, token, str(archive), digest, emit=lambda line: None,
                                       attempts=2, backoff=0.1)
        assert receipt.sha256 == digest and (folder / NAME).read_bytes() == archive.read_bytes()
    finally:
        loris.stop()


def test_a_request_head_must_arrive_whole_within_the_deadline(receiver: Receiver) -> None:
    loris = Loris(receiver.port, sources(60, 2), every=1.0)  # never idle long enough for a per-read timeout
    try:
        wait_for(lambda: loris.closed_by_server() == 2, gate.HEAD_DEADLINE * 4, "the server to close slow heads")
    finally:
        loris.stop()


def test_one_address_holds_at_most_max_per_peer_connections(receiver: Receiver) -> None:
    loris = Loris(receiver.port, ["127.0.0.70"] * (gate.MAX_PER_PEER + 4), every=0.5)
    try:
        wait_for(lambda: loris.closed_by_server() >= 4, 5, "the extra connections to be refused")
        time.sleep(0.5)
        assert loris.closed_by_server() == 4  # the first MAX_PER_PEER stay (until their deadline)
    finally:
        loris.stop()


def test_an_oversized_request_head_is_refused(receiver: Receiver) -> None:
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(b"PUT /upload/x HTTP/1.1\r\nHost: x\r\n" +
                     b"".join(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) for i in range(gate.MAX_HEAD_BYTES // 1000 + 2)))
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]


def test_the_gate_evicts_the_oldest_stranger_and_keeps_workers() -> None:
    logs: list[str] = []
    g = gate.ConnectionGate(logs.append, max_connections=4, max_strangers=2, max_per_peer=3)
    socks = [socket.socket() for _ in range(6)]
    try:
        assert g.admit(socks[0], "a") and g.admit(socks[1], "b")
        g.head_done(socks[0], trusted=True)  # a worker: kept
        assert g.admit(socks[2], "c") and g.counts() == (3, 2)
        assert g.admit(socks[3], "d")  # strangers full: b (the oldest stranger) makes room
        assert g.counts() == (3, 2) and any("from b" in line for line in logs)
        g.head_done(socks[2], trusted=True)
        assert g.admit(socks[4], "a") and g.counts() == (4, 2)
        g.head_done(socks[4], trusted=True)  # now 3 workers + 1 stranger, 4 = the limit
        assert not g.admit(socks[5], "e")
        assert not g.admit(socks[5], "a")
    finally:
        for sock in socks:
            sock.close()


def test_the_gate_reaps_late_heads() -> None:
    now = [0.0]
    g = gate.ConnectionGate(lambda line: None, head_deadline=10, clock=lambda: now[0])
    a, b = socket.socket(), socket.socket()
    try:
        g.admit(a, "a")
        g.admit(b, "b")
        g.head_done(b, trusted=True)
        now[0] = 11
        assert g.reap() == 1 and g.counts() == (1, 0)
        g.awaiting_head(b)  # its next request's head is late too
        now[0] = 22
        assert g.reap() == 1 and g.counts() == (0, 0)
    finally:
        a.close()
        b.close()
