from __future__ import annotations


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
