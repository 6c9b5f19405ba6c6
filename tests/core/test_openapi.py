from __future__ import annotations

import json
import re

from core.openapi import SWAGGER_UI


def _operations(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def test_every_error_response_is_documented_as_problem_json(http):
    spec = http.get("/openapi.json").get_json()
    assert "Problem" in spec["components"]["schemas"]
    seen = 0
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                seen += 1
                assert list(response["content"]) == ["application/problem+json"], (path, status)
    assert seen > 10


def test_declared_request_bodies_are_required(http):
    spec = http.get("/openapi.json").get_json()
    bodies = [op["requestBody"] for _, _, op in _operations(spec) if "requestBody" in op]
    assert bodies and all(body["required"] is True for body in bodies)


def test_problem_schema_matches_a_real_error(http):
    spec = http.get("/openapi.json").get_json()
    required = spec["components"]["schemas"]["Problem"]["required"]
    body = http.get("/v1/unknown").get_json()
    assert set(required) <= set(body)


def test_every_operation_has_an_id_examples_and_its_statuses(http):
    spec = http.get("/openapi.json").get_json()
    ids = []
    for path, method, operation in _operations(spec):
        ids.append(operation["operationId"])
        statuses = set(operation["responses"])
        if operation.get("security"):
            assert {"401", "403"} <= statuses, (method, path)
        body = operation.get("requestBody")
        if body and "application/json" in body["content"]:
            assert {"400", "413", "415"} <= statuses, (method, path)
            assert "example" in body["content"]["application/json"], (method, path)
        if statuses - {"200", "201", "204"}:
            assert "503" in statuses, (method, path)  # it uses a database
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                assert "example" in media or "examples" in media, (method, path, status)
    assert len(ids) == len(set(ids))


def test_problem_codes_are_an_enum_of_the_documented_codes(http):
    spec = http.get("/openapi.json").get_json()
    codes = set(spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"])
    assert {"invalid_request", "unsupported_media_type", "payload_too_large"} <= codes
    assert {"invalid_nonce", "rate_limited", "unavailable", "invalid_crl"} <= codes
    for _, _, operation in _operations(spec):
        for response in operation["responses"].values():
            example = response.get("content", {}).get("application/problem+json", {})
            if example:
                assert example["example"]["code"] in codes


def test_the_docs_page_works_offline(http):
    page = http.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(url.startswith("/") for url in sources), sources
    assert "cdn" not in html.lower()
    assert '"validatorUrl": null' in html
    for url in sources:
        asset = http.get(url)
        assert asset.status_code == 200, url
        assert b"://cdn" not in asset.get_data()


def test_the_vendored_swagger_ui_keeps_its_licence_and_pinned_version():
    folder = SWAGGER_UI
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert json.loads((folder / "package.json").read_text())["version"].count(".") == 2
