"""The OpenAPI 3.1 description of /api/v1: valid, served, and complete."""
from __future__ import annotations

import re

from openapi_spec_validator import validate

from b24app.web import openapi

_PARAM = re.compile(r"<[^>]+>|\{[^}]+\}")
_IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _shape(path: str) -> str:
    """`/badges/<raw_code>` and `/badges/{code}` are the same route: parameters compared by position."""
    return _PARAM.sub("{}", path)


def test_the_description_is_valid_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_in_the_url_map_is_described_and_nothing_else(app) -> None:
    document = openapi.document()
    prefix = document["servers"][0]["url"]
    described = {(_shape(prefix + path), method.upper())
                 for path, item in document["paths"].items() for method in item}
    routed = {(_shape(rule.rule), method)
              for rule in app.url_map.iter_rules() if rule.rule.startswith(prefix + "/")
              for method in rule.methods - _IGNORED_METHODS}
    assert routed, "no /api/v1 routes found"
    assert routed - described == set(), "routes missing from the OpenAPI description"
    assert described - routed == set(), "described operations the app does not route"


def test_every_operation_documents_its_errors() -> None:
    for path, item in openapi.document()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(status.startswith("2") for status in responses), (method, path)
            if path != "/openapi.json":
                assert any(status.startswith("4") for status in responses), (method, path)
                for status, response in responses.items():
                    if status[0] in "45":
                        schema = response["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)
            if operation.get("security") != []:
                assert "401" in responses, (method, path)


def test_served_at_api_v1_openapi_json(client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == openapi.document()
