"""The Gitea API description the project carries: valid Swagger 2.0, exactly the operations the
publisher uses, each copied unchanged from Gitea's official file (checked when VELOFARM_GITEA_SWAGGER
names it; .ci/run sets it), and the checker the stand-in uses catches what it should."""

from __future__ import annotations

import json
import os
from pathlib import Path

from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator
from support.gitea_standin import DESCRIPTION, KINDS
from support.swagger2 import Swagger2

CARRIED = json.loads(DESCRIPTION.read_text(encoding="utf-8"))


def operations(doc: dict) -> dict[str, tuple[str, str]]:
    return {op["operationId"]: (path, method) for path, ops in doc["paths"].items()
            for method, op in ops.items() if isinstance(op, dict) and "operationId" in op}


def test_carried_description_is_valid_swagger_2() -> None:
    validate(CARRIED, cls=OpenAPIV2SpecValidator)


def test_carried_description_holds_exactly_the_operations_the_stand_in_serves() -> None:
    assert set(operations(CARRIED)) == set(KINDS)


def unresolved_refs(node: object, root: dict[str, object]) -> list[str]:
    """Every `$ref` under `node` that does not name a part of `root`."""
    if isinstance(node, list):
        return [r for item in node for r in unresolved_refs(item, root)]
    if not isinstance(node, dict):
        return []
    found = []
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: object = root
        for part in ref.removeprefix("#/").split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        if target is None:
            found.append(ref)
    return found + [r for value in node.values() for r in unresolved_refs(value, root)]


def test_unresolved_refs_are_found() -> None:
    assert unresolved_refs({"a": [{"$ref": "#/definitions/Nope"}]}, {"definitions": {}}) == ["#/definitions/Nope"]


def test_carried_description_is_an_unchanged_subset_of_the_official_one() -> None:
    """Against the official file when CI names it; in a bare clone, every $ref of the carried
    subset must at least resolve inside it (nothing was cut that an operation still points to)."""
    full = os.environ.get("VELOFARM_GITEA_SWAGGER")
    if not full:
        assert unresolved_refs(CARRIED, CARRIED) == []
        return
    official = json.loads(Path(full).read_text(encoding="utf-8"))
    assert CARRIED["basePath"] == official["basePath"]
    for op_id, (path, method) in operations(CARRIED).items():
        assert official["paths"][path][method] == CARRIED["paths"][path][method], op_id
    for kind in ("definitions", "responses", "securityDefinitions"):
        for name, body in CARRIED[kind].items():
            assert official[kind][name] == body, f"{kind}/{name}"


def test_checker_flags_unknown_fields_wrong_types_and_undescribed_statuses() -> None:
    api = Swagger2(DESCRIPTION)
    path = "/api/v1/repos/acme/velostream/releases/7"
    assert api.check_request("PATCH", path, {}, "application/json", {"draft": False}) == []
    [unknown] = api.check_request("PATCH", path, {}, "application/json", {"draft": False, "make_latest": "true"})
    assert "make_latest" in unknown
    [wrong] = api.check_response("GET", path, 200, {"id": "7"})
    assert "id" in wrong and "integer" in wrong
    assert api.check_response("GET", path, 200, {"id": 7, "draft": True}) == []
    assert api.check_response("GET", path, 500, {"message": "", "url": "u"}) == []  # an APIError
    assert api.check_response("GET", path, 201, {"id": 7}) != []
    assert api.check_request("GET", "/api/v1/repos/acme/velostream/releases/tags/v1.0.0", {"token": ["x"]}, "") != []
    assert api.operation("GET", "/api/v1/repos/a/b/releases/tags/v1")[1]["operationId"] == "repoGetReleaseByTag"
