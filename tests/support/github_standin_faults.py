"""Faults the GitHub stand-in injects on demand: errors, rate limits and dropped connections.

A fault matches a kind of request ("list", "create", "get_release", "patch", "list_assets",
"upload", "delete", or "any"). It fires on the (skip+1)-th matching request, `times` times.
`after=True` applies the request first and then fails the answer: the write went through, the
client never heard. Actions:
  "500", "502"   an error answer (GitHub's 5xx)
  "429"          too many requests, with retry-after: 1
  "drop"         the connection is cut without an answer; on "upload" it is cut mid-body, after the
                 asset was created: it stays with state "open" and a partial size, as GitHub can
                 leave it (the description's enum has "uploaded" and "open", not "starter")
  "secondary"    403, retry-after: 1, "You have exceeded a secondary rate limit"
  "primary"      403, x-ratelimit-remaining: 0, x-ratelimit-reset: now + 1
  "401", "403"   a real refusal: Bad credentials / Resource not accessible, no rate-limit headers
  "corrupt"      (upload) the asset is stored "uploaded" but with another digest
  "hold"         (upload) as "drop", but half the body is read and then the request waits until the
                 test calls `fault.release()` (or 10 minutes pass): the client is caught mid-upload,
                 `fault.held` says it is, and a test can kill the client then
"""

from __future__ import annotations

import math
import time
from typing import Any

from support.standin_base import Fault, Faults

KINDS = {"list", "create", "get_release", "get_tag", "patch", "list_assets", "upload", "delete",
         "delete_release", "any"}
ACTIONS = {"500", "502", "429", "drop", "secondary", "primary", "401", "403", "corrupt", "hold"}
DOCS = "https://docs.github.com/rest"


def github_faults() -> Faults:
    return Faults(KINDS, ACTIONS)


def error_answer(fault: Fault) -> tuple[int, dict[str, str], dict[str, Any]]:
    """Status, headers and JSON body for an answering fault (everything but drop and corrupt)."""
    now = time.time()
    headers: dict[str, str] = {}
    if fault.action in ("500", "502"):
        status, message = int(fault.action), "Server Error"
    elif fault.action == "429":
        status, message = 429, "Too many requests"
        headers["retry-after"] = "1"
    elif fault.action == "secondary":
        status = 403
        message = ("You have exceeded a secondary rate limit. Please wait a few minutes before you "
                   "try again.")
        headers["retry-after"] = "1"
    elif fault.action == "primary":
        status, message = 403, "API rate limit exceeded for user ID 1."
        headers.update({"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "0",
                        "x-ratelimit-used": "5000", "x-ratelimit-resource": "core",
                        "x-ratelimit-reset": str(math.ceil(now + 1))})
    elif fault.action == "401":
        status, message = 401, "Bad credentials"
    elif fault.action == "403":
        status, message = 403, "Resource not accessible by personal access token"
    else:
        raise ValueError(f"{fault.action} is not an answering fault")
    fault.answered(status, headers, now)
    return status, headers, {"message": message, "documentation_url": DOCS, "status": str(status)}
