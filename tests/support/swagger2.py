"""Checks HTTP exchanges against a Swagger 2.0 description (Gitea's API is described in 2.0, which
openapi-core does not read): the operation, its path, query, form and body parameters, the media
type, and the response status and body schema, with jsonschema over the description's definitions.

Strict where Gitea is lenient: Gitea ignores unknown JSON fields and query parameters, so a client
that sends one (a GitHub habit such as `make_latest` or `per_page`) would silently get something it
did not ask for; here every object is closed (`additionalProperties: false`) and every query
parameter must be declared. The stand-in's own answers are held to the same closed schemas.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema

Op = dict[str, Any]


def closed(node: Any) -> Any:
    """A copy of a schema tree in which every object with properties allows no others."""
    if isinstance(node, list):
        return [closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: closed(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


class Swagger2:
    """One description, loaded from a file; `check_request`/`check_response` return problems."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.doc: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        if self.doc.get("swagger") != "2.0":
            raise ValueError(f"{path}: not a Swagger 2.0 description")
        self.base = self.doc.get("basePath", "")
        self.definitions = closed(self.doc.get("definitions", {}))
        self.templates = sorted(self.doc["paths"], key=lambda t: (-t.count("/") + t.count("{"), t))

    def __repr__(self) -> str:
        return f"Swagger2({self.path.name})"

    # -- finding the operation ----------------------------------------------------------------------
    def operation(self, method: str, path: str) -> tuple[str, Op, dict[str, str]] | None:
        """The template, operation and path parameters for a request path (basePath included)."""
        if not path.startswith(self.base):
            return None
        rest = path[len(self.base):]
        for template in self.templates:
            op = self.doc["paths"][template].get(method.lower())
            pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            match = re.fullmatch(pattern, rest)
            if op is None or match is None:
                continue
            params = match.groupdict()
            if all(self._typed(p, params[p["name"]]) for p in op.get("parameters", []) if p["in"] == "path"):
                return template, op, params
        return None

    def _typed(self, param: dict[str, Any], value: str) -> bool:
        kind = param.get("type")
        if kind == "integer":
            return re.fullmatch(r"-?\d+", value) is not None
        if kind == "boolean":
            return value in ("true", "false")
        return True

    # -- requests -----------------------------------------------------------------------------------
    def check_request(self, method: str, path: str, query: dict[str, list[str]], content_type: str,
                      body: Any = None, form: dict[str, str] | None = None) -> list[str]:
        """Problems with a request; `body` is parsed JSON, `form` maps form field -> "file"/"text"."""
        what = f"{method} {path}"
        found = self.operation(method, path)
        if found is None:
            return [f"{what}: no such operation in {self.path.name}"]
        _, op, _ = found
        params = op.get("parameters", [])
        problems = [f"{what}: query parameter {name!r} is not in the description" for name in query
                    if not any(p["in"] == "query" and p["name"] == name for p in params)]
        for p in params:
            if p["in"] == "query" and p["name"] in query:
                problems += [f"{what}: query {p['name']}={v!r} is not a {p.get('type')}"
                             for v in query[p["name"]] if not self._typed(p, v)]
            if p.get("required") and p["in"] == "query" and p["name"] not in query:
                problems.append(f"{what}: query parameter {p['name']!r} is required")
        media = content_type.split(";")[0].strip().lower()
        consumes = op.get("consumes", self.doc.get("consumes", []))
        if media and media not in consumes:
            problems.append(f"{what}: content type {media!r} is not one of {consumes}")
        problems += self._check_body(what, params, body, form)
        return problems

    def _check_body(self, what: str, params: list[dict[str, Any]], body: Any,
                    form: dict[str, str] | None) -> list[str]:
        problems: list[str] = []
        body_param = next((p for p in params if p["in"] == "body"), None)
        if body is not None and body_param is None:
            problems.append(f"{what}: sends a JSON body the operation does not take")
        if body_param is not None:
            if body is None and body_param.get("required"):
                problems.append(f"{what}: the body is required")
            elif body is not None:
                problems += [f"{what}: body: {e}" for e in self.schema_errors(body_param["schema"], body)]
        for name, kind in (form or {}).items():
            p = next((p for p in params if p["in"] == "formData" and p["name"] == name), None)
            if p is None:
                problems.append(f"{what}: form field {name!r} is not in the description")
            elif (p.get("type") == "file") != (kind == "file"):
                problems.append(f"{what}: form field {name!r} must be a {p.get('type')}, got a {kind}")
        return problems

    # -- responses ----------------------------------------------------------------------------------
    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Problems with an answer: its status must be described (errors: an APIError body)."""
        what = f"response {status} to {method} {path}"
        found = self.operation(method, path)
        if found is None:
            return [f"{what}: no such operation"]
        responses = found[1].get("responses", {})
        response = responses.get(str(status))
        if response is None:
            if status >= 400:  # Gitea sends these undescribed (401, 403, 409, 422, 5xx ...): an APIError
                return [f"{what}: {e}" for e in self.schema_errors({"$ref": "#/definitions/APIError"}, body)]
            return [f"{what}: status {status} is not in the description"]
        response = self._resolve(response)
        schema = response.get("schema")
        if schema is None:
            if body is None or (status >= 400 and not self.schema_errors({"$ref": "#/definitions/APIError"}, body)):
                return []
            return [f"{what}: the description gives no body, got {json.dumps(body)[:200]}"]
        return [f"{what}: {e}" for e in self.schema_errors(schema, body)]

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            kind, name = node["$ref"].split("/")[1:]
            node = self.doc[kind][name]
        return node

    def schema_errors(self, schema: dict[str, Any], value: Any) -> list[str]:
        root = {"definitions": self.definitions, "allOf": [closed(copy.deepcopy(schema))]}
        validator = jsonschema.Draft4Validator(root)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                for e in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path)))]
