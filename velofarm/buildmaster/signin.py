"""Limits on sign-in attempts, and the threads that check passwords.

Each check is an scrypt hash (about 0.1 s and 32 MiB). Unlimited, a stream of wrong passwords
would fill the reactor's shared thread pool, which also serves the Releases page, tag resolution
and publishing. So failed sign-ins are counted per client address and per user name over a
sliding window (a refused attempt costs no hash), and checks run in their own small pool.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import threads
from twisted.python.threadpool import ThreadPool

WINDOW = 15 * 60.0  # seconds over which failures count
MAX_USER_FAILURES = 8  # per user name (any client)
MAX_CLIENT_FAILURES = 20  # per client address (any user name)
MAX_KEYS = 10_000  # remembered names and addresses; the oldest are forgotten first
MAX_PENDING = 16  # checks queued or running at once
POOL_THREADS = 2


class TooManySignIns(UnauthorizedLogin):
    """Refused without checking the password; try again in `retry_after` seconds."""

    def __init__(self, retry_after: float, why: str) -> None:
        super().__init__(why)
        self.retry_after = max(1, int(retry_after + 0.999))
        self.why = why


class SignInLimits:
    """Failed attempts per key ('user:NAME', 'client:ADDRESS') within WINDOW seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, window: float = WINDOW,
                 max_user: int = MAX_USER_FAILURES, max_client: int = MAX_CLIENT_FAILURES) -> None:
        self.clock, self.window = clock, window
        self.max_user, self.max_client = max_user, max_client
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        seen = self._failures.get(key, deque())
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        return seen

    def check(self, username: str, client: str) -> None:
        """Raise TooManySignIns when this user or this client failed too often recently."""
        for key, limit, who in ((f"client:{client}", self.max_client, f"this address ({client})"),
                                (f"user:{username}", self.max_user, f"user {username}")):
            seen = self._recent(key)
            if len(seen) >= limit:
                wait = seen[0] + self.window - self.clock()
                raise TooManySignIns(wait, f"too many failed sign-ins for {who}; try again in "
                                           f"{int(wait) + 1} s")

    def failed(self, username: str, client: str) -> None:
        now = self.clock()
        for key in (f"client:{client}", f"user:{username}"):
            seen = self._recent(key)
            seen.append(now)
            self._failures[key] = seen
            self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        # The user's count only: an attacker signing in to an account of their own must not reset
        # the count of the address they guess from.
        self._failures.pop(f"user:{username}", None)


class CheckPool:
    """A small thread pool for password checks alone, started on first use."""

    def __init__(self, threads_: int = POOL_THREADS) -> None:
        self.pool = ThreadPool(minthreads=0, maxthreads=threads_, name="velofarm-signin")
        self.pending = 0
        self._started = False

    def run(self, func: Callable[..., Any], *args: Any) -> Any:
        from twisted.internet import reactor
        if self.pending >= MAX_PENDING:
            raise TooManySignIns(1, "too many sign-ins at once; try again in a moment")
        if not self._started:
            self.pool.start()
            reactor.addSystemEventTrigger("during", "shutdown", self.pool.stop)  # type: ignore[attr-defined]
            self._started = True
        self.pending += 1

        def done(result: Any) -> Any:
            self.pending -= 1
            return result

        return threads.deferToThreadPool(reactor, self.pool, func, *args).addBoth(done)  # type: ignore[arg-type]


CHECKS = CheckPool()
