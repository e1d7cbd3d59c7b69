"""The project's own GitHub API description: it covers every route the stand-in serves, it refuses
what GitHub refuses, and (when VELOFARM_GITHUB_OPENAPI names GitHub's official description, as in
CI) every operation, parameter, status code and schema in it is GitHub's, unchanged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from openapi_core.testing import MockRequest
from support.github_api import (
    OFFICIAL_DESCRIPTION_ENV,
    OWN_DESCRIPTION,
    ROUTES,
    SPEC_HOSTS,
    description_paths,
    load_descriptions,
)

KEPT_AS_IS = ("type", "required", "enum", "nullable", "format", "in")  # never dropped from a schema


def own() -> dict[str, Any]:
    return dict(json.loads(OWN_DESCRIPTION.read_text()))


def deref(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return deref(target, root)
        return {k: deref(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(v, root) for v in node]
    return node


def not_in(mine: Any, theirs: Any, where: str = "") -> list[str]:
    """Where `mine` says something `theirs` does not: every key, value and list item must be GitHub's."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        found = [f"{where}/{k}: dropped" for k in KEPT_AS_IS if k in theirs and k not in mine]
        for key, value in mine.items():
            found += not_in(value, theirs[key], f"{where}/{key}") if key in theirs else [f"{where}/{key}: not GitHub's"]
        return found
    if isinstance(mine, list) and isinstance(theirs, list) and len(mine) == len(theirs):
        return [e for i, (a, b) in enumerate(zip(mine, theirs, strict=True)) for e in not_in(a, b, f"{where}/{i}")]
    return [] if mine == theirs else [f"{where}: {mine!r} is {theirs!r} in GitHub's"]


def test_every_route_the_standin_serves_is_described() -> None:
    paths = own()["paths"]
    for kind, host, method, template in ROUTES:
        op = paths.get(template, {}).get(method.lower())
        assert op is not None, f"{kind}: {method} {template} is not in {OWN_DESCRIPTION.name}"
        servers = [s["url"] for s in op.get("servers", own()["servers"])]
        assert servers == [SPEC_HOSTS[host]], f"{kind}: served on {servers}, the stand-in says {host}"


def test_it_refuses_what_github_refuses() -> None:
    spec = load_descriptions((OWN_DESCRIPTION,))[0].spec
    headers = {"Content-Type": "application/json"}
    good = MockRequest(SPEC_HOSTS["api"], "post", "/repos/acme/velostream/releases", headers=headers,
                       data=b'{"tag_name": "v1.0.0", "draft": true}', content_type="application/json")
    spec.validate_request(good)
    for body in (b'{"draft": true}', b'{"tag_name": "v1.0.0", "make_latest": true}',
                 b'{"tag_name": "v1.0.0", "make_latest": "yes"}', b'{"tag_name": 1}'):
        bad = MockRequest(SPEC_HOSTS["api"], "post", "/repos/acme/velostream/releases", headers=headers,
                          data=body, content_type="application/json")
        with pytest.raises(Exception, match="(?i)invalid|schema"):
            spec.validate_request(bad)


def test_the_official_description_joins_when_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OFFICIAL_DESCRIPTION_ENV, raising=False)
    assert description_paths() == [OWN_DESCRIPTION]
    monkeypatch.setenv(OFFICIAL_DESCRIPTION_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match="VELOFARM_GITHUB_OPENAPI=.*missing.json: no such file"):
        description_paths()
    monkeypatch.setenv(OFFICIAL_DESCRIPTION_ENV, str(OWN_DESCRIPTION))
    assert description_paths() == [OWN_DESCRIPTION, OWN_DESCRIPTION]


def test_it_is_githubs_own_words() -> None:
    """Against the official description when CI names it; otherwise against itself dereferenced,
    which still checks every $ref resolves."""
    mine = own()
    official_path = os.environ.get(OFFICIAL_DESCRIPTION_ENV)
    theirs = json.loads(Path(official_path).read_text()) if official_path else mine
    theirs_paths = deref(theirs["paths"], theirs)
    problems = []
    for template, operations in deref(mine["paths"], mine).items():
        for method, op in operations.items():
            problems += not_in(op, theirs_paths.get(template, {}).get(method), f"{method.upper()} {template}")
    assert problems == [], "\n".join(problems)
