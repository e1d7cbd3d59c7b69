"""The API descriptions the GitHub stand-in holds every request and answer to.

Always the project's own, `github-releases-api.json` beside this file: the release part of GitHub's
official OpenAPI description that velofarm uses (operations, parameters, status codes and schemas
copied unchanged; unused operations and fields left out). When VELOFARM_GITHUB_OPENAPI names a file
(CI points it at GitHub's full official description), that one as well. The description's upload
operation lives on https://uploads.github.com, so requests are validated as if sent to
api.github.com or uploads.github.com, by the stand-in host they came in on.
"""

from __future__ import annotations

import functools
import json
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse

OWN_DESCRIPTION = Path(__file__).resolve().with_name("github-releases-api.json")
OFFICIAL_DESCRIPTION_ENV = "VELOFARM_GITHUB_OPENAPI"
ROUTES = [  # kind, host, method, path template in the description
    ("list", "api", "GET", "/repos/{owner}/{repo}/releases"),
    ("create", "api", "POST", "/repos/{owner}/{repo}/releases"),
    ("get_tag", "api", "GET", "/repos/{owner}/{repo}/releases/tags/{tag}"),
    ("delete", "api", "DELETE", "/repos/{owner}/{repo}/releases/assets/{asset_id}"),
    ("get_release", "api", "GET", "/repos/{owner}/{repo}/releases/{release_id}"),
    ("patch", "api", "PATCH", "/repos/{owner}/{repo}/releases/{release_id}"),
    ("delete_release", "api", "DELETE", "/repos/{owner}/{repo}/releases/{release_id}"),
    ("list_assets", "api", "GET", "/repos/{owner}/{repo}/releases/{release_id}/assets"),
    ("upload", "uploads", "POST", "/repos/{owner}/{repo}/releases/{release_id}/assets"),
]
SPEC_HOSTS = {"api": "https://api.github.com", "uploads": "https://uploads.github.com"}


@dataclass(frozen=True)
class Description:
    """One API description, parsed."""

    name: str  # the file's name, for messages
    spec: OpenAPI
    raw: dict[str, Any]


def description_paths() -> list[Path]:
    """The project's own description, then the official one when the environment names it."""
    paths = [OWN_DESCRIPTION]
    official = os.environ.get(OFFICIAL_DESCRIPTION_ENV, "")
    if official:
        if not Path(official).is_file():
            raise FileNotFoundError(f"{OFFICIAL_DESCRIPTION_ENV}={official}: no such file; point it at "
                                    "GitHub's OpenAPI description, or unset it")
        paths.append(Path(official))
    return paths


@functools.lru_cache(maxsize=4)
def load_descriptions(paths: tuple[Path, ...]) -> tuple[Description, ...]:
    """Parsed once per process (about a second for the official one)."""
    return tuple(Description(p.name, OpenAPI.from_file_path(str(p)), json.loads(p.read_text())) for p in paths)


def descriptions() -> tuple[Description, ...]:
    return load_descriptions(tuple(description_paths()))


def route(host: str, method: str, path: str) -> tuple[str, str, dict[str, str]]:
    """The request's kind, its template in the description and its path parameters."""
    for kind, r_host, r_method, template in ROUTES:
        pattern = re.sub(r"\{(\w+_id)\}", r"(?P<\1>\\d+)", template)
        m = re.fullmatch(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern), path)
        if m and (host, method) == (r_host, r_method):
            return kind, template, {k: urllib.parse.unquote(v) for k, v in m.groupdict().items()}
    return "unknown", "", {}


def explain(exc: Exception) -> str:
    """openapi-core's message plus the schema errors it keeps in the cause."""
    details = getattr(exc.__cause__, "schema_errors", None) or getattr(exc, "schema_errors", None) or ()
    return "; ".join([str(exc), *(str(e.message) for e in details)])


def request_error(request: MockRequest) -> str:
    """Why a request breaks a description (naming it), or "" when every description allows it."""
    for described in descriptions():
        try:
            described.spec.validate_request(request)
        except OpenAPIError as exc:
            return f"({described.name}) {explain(exc)}"
    return ""


def response_errors(request: MockRequest | None, template: str, status: int, data: bytes,
                    headers: dict[str, str]) -> list[str]:
    """Why an answer breaks each description, one line per broken description."""
    return [why for d in descriptions() if (why := response_error(d, request, template, status, data, headers))]


def response_error(described: Description, request: MockRequest | None, template: str, status: int,
                   data: bytes, headers: dict[str, str]) -> str:
    method = request.method.lower() if request is not None else ""
    op = described.raw["paths"].get(template, {}).get(method, {})
    if request is not None and str(status) in op.get("responses", {}):
        try:
            described.spec.validate_response(request, MockResponse(data, status, headers,
                                                                   "application/json" if data else ""))
        except OpenAPIError as exc:
            return f"({described.name}) {explain(exc)}"
        return ""
    if status >= 400:  # errors the description leaves out (401, 403, 5xx): GitHub's basic error
        body = json.loads(data)
        return "" if isinstance(body.get("message"), str) and "documentation_url" in body else "not a basic error"
    return f"({described.name}) not in the description"
