"""A TCP proxy on 127.0.0.1 that can catch a transfer in flight: a stand-in for a slow link.

Workers reach the master's upload port through it (`[master] upload_url`, as through a tunnel).
While armed, the first connection that has sent more than `hold_after` bytes towards the master
stops being forwarded after those bytes and `held` is set: the upload is half sent, the receiver
holds a partial `.part` file, and it stays so until the test acts (kills the master, say). After
`disarm()` every byte passes. Closing either side closes the other.
"""

from __future__ import annotations

import socket
import threading
from typing import Self

HOLD_AT_MOST = 600.0  # seconds a caught connection waits before it is closed anyway


class HoldProxy:
    def __init__(self, listen_port: int, target_port: int, hold_after: int) -> None:
        self.listen_port, self.target_port, self.hold_after = listen_port, target_port, hold_after
        self.held = threading.Event()
        self._armed = True
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)

    def __enter__(self) -> Self:
        threading.Thread(target=self._accept, daemon=True, name="holdproxy").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._armed = False
        self._server.close()
        with self._lock:
            for s in self._sockets:
                s.close()

    def disarm(self) -> None:
        self._armed = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            done = threading.Event()  # either direction ended
            threading.Thread(target=self._pump, args=(client, upstream, True, done), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False, done), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, towards_master: bool, done: threading.Event) -> None:
        sent = 0
        try:
            while chunk := src.recv(16384):
                if towards_master and self._armed and not self.held.is_set():
                    room = self.hold_after - sent
                    if len(chunk) > room:
                        dst.sendall(chunk[:max(room, 0)])
                        self.held.set()  # this connection is caught: it forwards nothing more
                        done.wait(HOLD_AT_MOST)  # until the other direction ends (the master is killed)
                        return
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            done.set()
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
