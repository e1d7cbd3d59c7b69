"""Buildbot 4.3 does not survive a PostgreSQL restart; this gives PostgreSQL what it gives MySQL.

Buildbot's database pool retries an `OperationalError` only when its driver strategy says so,
and the strategy PostgreSQL gets (the base one) answers yes only to MySQL's and SQLite's texts
('Lost connection', 'database is locked'). So after the server restarts, every pooled connection
fails once ("terminating connection due to administrator command", "server closed the connection
unexpectedly") and the query that meets it fails for good: a step's log or a build's end is lost
and a release can stay "running" for ever. A connection refused while the server is down fails
the same way (the pool's connect is outside Buildbot's retry loop).

For postgresql URLs, `install()` makes Buildbot's engine factory use `PostgresStrategy`:
- each connection is pinged as it leaves the pool (SQLAlchemy's pre-ping): a dead one is replaced
  before any query runs on it;
- an error that says the connection is gone or cannot be made is retried by Buildbot's own loop
  (back-off from 1 s), and opening a connection is retried for up to `UNREACHABLE_FOR` seconds:
  a database away for a restart is waited for; one away for longer fails as before.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from buildbot.db import enginestrategy
from twisted.python import log

UNREACHABLE_FOR = 300.0  # seconds a connection is retried while the server does not answer
GONE = ("terminating connection", "server closed the connection", "closed unexpectedly", "connection refused",
        "could not connect to server", "connection to server", "the database system is",
        "is not currently accepting connections", "no connection to the server", "connection already closed",
        "ssl syscall error", "eof detected")


def connection_lost(exc: BaseException) -> bool:
    """Whether a database error means the connection went away (worth retrying on a new one)."""
    if getattr(exc, "connection_invalidated", False):
        return True
    text = str(getattr(exc, "orig", None) or exc).lower()
    return any(marker in text for marker in GONE)


class PostgresStrategy(enginestrategy.Strategy):
    def set_up(self, u: Any, engine: sa.engine.Engine) -> None:
        sa.event.listen(engine.pool, "checkout", _ping)
        connect = engine.connect

        def connect_waiting() -> Any:
            deadline, delay = time.monotonic() + UNREACHABLE_FOR, 0.5
            while True:
                try:
                    return connect()
                except sa.exc.OperationalError as exc:
                    if not connection_lost(exc) or time.monotonic() + delay > deadline:
                        raise
                    log.msg(f"velofarm: the database does not answer ({str(exc.orig).strip()}); "
                            f"retrying in {delay:.1f} s")
                    time.sleep(delay)  # in one of the database threads, as Buildbot's own retry sleeps
                    delay = min(delay * 2, 10.0)

        engine.connect = connect_waiting  # type: ignore[method-assign]

    def should_retry(self, operational_error: Any) -> bool:
        return connection_lost(operational_error) or bool(super().should_retry(operational_error))


def _ping(dbapi_con: Any, con_record: Any, con_proxy: Any) -> None:
    """As MySQL's checkout listener in Buildbot: a connection the server dropped is replaced."""
    try:
        with dbapi_con.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        if connection_lost(exc):
            raise sa.exc.DisconnectionError() from exc
        raise


_buildbot_strategy = enginestrategy.get_drivers_strategy


def _strategy(drivername: str) -> Any:
    if drivername.startswith("postgresql"):
        return PostgresStrategy()
    return _buildbot_strategy(drivername)


def install() -> None:
    """Use PostgresStrategy for postgresql URLs (idempotent)."""
    enginestrategy.get_drivers_strategy = _strategy
