"""Buildbot 4.3's REST API writes each answer from a thread-pool thread (rest.py, `_write_json_data`
via deferToThread); Twisted is not thread-safe, and under load the reactor's epoll state goes wrong:
from then on every new connection to the web UI fails ("FileNotFoundError" in epollreactor._add),
seen on the composed master on a busy 2-core machine. Here the JSON is still encoded in the thread,
and written in the reactor thread.
"""

from __future__ import annotations

from typing import Any

from buildbot.util import unicode2bytes
from buildbot.www import rest
from twisted.internet import reactor, threads


def _write_json_data_in_the_reactor(request: Any, encoder: Any, data: Any) -> None:
    body = b"".join(unicode2bytes(chunk) for chunk in encoder.iterencode(data))

    def write() -> None:
        if rest._is_request_finished(request):
            return
        request.setHeader(b"content-length", unicode2bytes(str(len(body))))
        if request.method != b"HEAD":
            request.write(body)
    threads.blockingCallFromThread(reactor, write)


def install() -> None:
    """Replace the thread's write with one the reactor makes (idempotent)."""
    rest.V2RootResource._write_json_data = staticmethod(_write_json_data_in_the_reactor)  # type: ignore[method-assign]
