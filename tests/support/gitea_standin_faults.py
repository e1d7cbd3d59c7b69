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

import time
from typing import Any

from support.standin_base import Fault, Faults

KINDS = {"repo", "list", "create", "get_tag", "get_release", "patch", "list_assets", "upload", "delete",
         "git_tag", "download", "any"}
ACTIONS = {"500", "502", "429", "drop", "401", "403", "corrupt", "truncate"}
MESSAGES = {500: "", 502: "Bad Gateway", 429: "Too Many Requests",
            401: "invalid username, password or token", 403: "user should have specific permission or be a site admin"}


def gitea_faults() -> Faults:
    return Faults(KINDS, ACTIONS)


def error_answer(fault: Fault, docs_url: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and APIError body for an answering fault (not drop, corrupt or truncate)."""
    if fault.action == "drop" or fault.damages:
        raise ValueError(f"{fault.action} is not an answering fault")
    status = int(fault.action)
    headers = {"Retry-After": "1"} if status == 429 else {}
    fault.answered(status, headers, time.time())
    return status, headers, {"message": MESSAGES[status], "url": docs_url}
