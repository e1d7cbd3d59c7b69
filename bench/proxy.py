"""A TCP proxy that delays every byte by a fixed time each way: a WAN link without netem.

    python -m bench.proxy --listen PORT --target HOST:PORT --delay 0.025

A delay line: each chunk read from one side is written to the other `delay` seconds later, and a
new connection carries nothing for one round trip (2 x delay), as a TCP handshake over the link
would cost. It models latency only: no bandwidth cap and no loss, and the endpoints' TCP windows
see loopback (BENCHMARKS.md says what that means for the numbers). At most CAP bytes are held a
direction, to bound its memory. Blocking sockets, two threads a direction (recv and send release
the GIL); its own process, so its copying shares no GIL with what it measures.
"""

from __future__ import annotations

import argparse
import collections
import socket
import sys
import threading
import time

READ = 1024 * 1024
CAP = 64 * 1024 * 1024


class Direction:
    """src → dst, each chunk released `delay` seconds after it was read."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float, start: float) -> None:
        self.src, self.dst, self.delay, self.start = src, dst, delay, start
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.held = 0
        self.cond = threading.Condition()

    def read(self) -> None:
        while True:
            try:
                data = self.src.recv(READ)
            except OSError:
                data = b""
            with self.cond:
                while self.held >= CAP:
                    self.cond.wait()
                self.queue.append((max(time.monotonic(), self.start) + self.delay, data))
                self.held += len(data)
                self.cond.notify_all()
            if not data:
                return

    def write(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    self.cond.wait()
                due, data = self.queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
            except OSError:
                return
            with self.cond:
                self.held -= len(data)
                self.cond.notify_all()


def _connection(client: socket.socket, target: tuple[str, int], delay: float) -> None:
    try:
        upstream = socket.create_connection(target)
    except OSError:
        client.close()
        return
    start = time.monotonic() + 2 * delay  # the handshake's round trip before any byte moves
    threads = []
    for src, dst in ((client, upstream), (upstream, client)):
        d = Direction(src, dst, delay, start)
        threads += [threading.Thread(target=d.read, daemon=True),
                    threading.Thread(target=d.write, daemon=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    upstream.close()


def serve(listen: int, target: tuple[str, int], delay: float) -> None:
    server = socket.create_server(("127.0.0.1", listen))
    print(f"proxy 127.0.0.1:{listen} -> {target[0]}:{target[1]} +{delay * 1000:.0f} ms each way", flush=True)
    while True:
        client, _ = server.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_connection, args=(client, target, delay), daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--target", required=True, help="HOST:PORT")
    parser.add_argument("--delay", type=float, default=0.025, help="seconds added each way")
    args = parser.parse_args(argv)
    host, _, port = args.target.rpartition(":")
    try:
        serve(args.listen, (host, int(port)), args.delay)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
