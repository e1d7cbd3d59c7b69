"""Faults the Gitea stand-in injects on demand: server errors, rate limits, refusals, dropped
connections and damaged uploads.

A fault matches a kind of request ("repo", "list", "create", "get_tag", "get_release", "patch",
"list_assets", "upload", "delete", "git_tag", "download", or "any"). It fires on the (skip+1)-th
matching request, `times` times. `after=True` applies the request first and then fails the answer:
the write went through, the client never heard. Actions:
  "500", "502"  an error answer (an APIError body, as Gitea or its proxy sends)
  "429"         too many requests with Retry-After: 1 (a proxy's limit: Gitea itself has none)
  "drop"        the connection is cut without an answer; on "upload" before the request is applied,
                it is cut mid-body: Gitea parses the whole form before it stores anything, so
                nothing is left behind; on "download" with after=True, halfway through the file
  "401", "403"  a refused token / a user without write access to releases
  "corrupt"     (upload) the attachment is stored with one byte changed: same size, other content
  "truncate"    (upload) the attachment is stored without its last byte
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

KINDS = {"repo", "list", "create", "get_tag", "get_release", "patch", "list_assets", "upload", "delete",
         "git_tag", "download", "any"}
ACTIONS = {"500", "502", "429", "drop", "401", "403", "corrupt", "truncate"}
MESSAGES = {500: "", 502: "Bad Gateway", 429: "Too Many Requests",
            401: "invalid username, password or token", 403: "user should have specific permission or be a site admin"}


@dataclass
class Fault:
    kind: str
    action: str
    after: bool = False
    skip: int = 0
    times: int = 1
    fired: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)  # what was sent, for assertions

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.action not in ACTIONS:
            raise ValueError(f"unknown fault {self.kind}/{self.action}")

    @property
    def damages(self) -> bool:
        """The request is applied, its stored result damaged, and the answer looks normal."""
        return self.action in ("corrupt", "truncate")


class Faults:
    """A queue of faults; thread-safe because the stand-in serves requests on threads."""

    def __init__(self) -> None:
        self.queue: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, kind: str, action: str, *, after: bool = False, skip: int = 0, times: int = 1) -> Fault:
        fault = Fault(kind, action, after, skip, times)
        with self._lock:
            self.queue.append(fault)
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


def error_answer(fault: Fault, docs_url: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and APIError body for an answering fault (not drop, corrupt or truncate)."""
    if fault.action in ("drop", "corrupt", "truncate"):
        raise ValueError(f"{fault.action} is not an answering fault")
    status = int(fault.action)
    headers = {"Retry-After": "1"} if status == 429 else {}
    fault.answers.append({"status": status, "headers": dict(headers), "sent_at": time.time()})
    return status, headers, {"message": MESSAGES[status], "url": docs_url}
