"""The OpenAPI document describes exactly the routes the API serves."""

from __future__ import annotations

import json
from typing import Any

from bt.control.api import ROUTES, ControlResource
from bt.control.openapi import document

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_it_is_json_and_openapi_3_1() -> None:
    doc = json.loads(json.dumps(document()))
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] and doc["info"]["version"]


def test_it_lists_exactly_the_routes_of_the_table() -> None:
    documented = operations(document())
    assert set(documented) == {(r.method, r.path) for r in ROUTES}
    for route in ROUTES:
        assert documented[(route.method, route.path)]["operationId"] == route.handler
        assert callable(getattr(ControlResource, "_" + route.handler))


def test_every_operation_needs_the_bearer_token_and_documents_errors() -> None:
    doc = document()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    # Either the bearer token or the web page's session cookie (docs/web.rst).
    assert doc["security"] == [{"bearer": []}, {"webSession": []}]
    assert doc["components"]["securitySchemes"]["webSession"]["in"] == "cookie"
    error = doc["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["required"] == ["status", "message"]
    for (method, path), operation in operations(doc).items():
        assert {"401", "405", "500"} <= set(operation["responses"]), (method, path)
        if "{info_hash}" in path:
            assert "404" in operation["responses"], (method, path)


def test_every_reference_resolves() -> None:
    doc = document()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(doc):
        target: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_path_parameters_are_declared() -> None:
    for path, item in document()["paths"].items():
        if "{info_hash}" in path:
            assert [p["name"] for p in item["parameters"]] == ["info_hash"]


def test_callers_get_their_own_copy() -> None:
    document()["paths"].clear()
    assert document()["paths"]
