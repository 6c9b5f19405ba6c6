from __future__ import annotations

import pytest

PROBLEM = "application/problem+json"


def _assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    return body


def test_unknown_route_is_not_found(http):
    _assert_problem(http.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_with_allow(http):
    response = http.delete("/healthz")
    _assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_oversize_body_is_413_before_parsing(app):
    @app.post("/echo")
    def echo():
        from flask import request

        return {"size": len(request.get_data())}

    http = app.test_client()
    assert http.post("/echo", data=b"x" * 100).get_json() == {"size": 100}
    response = http.post(
        "/echo", data=b"x" * (64 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    _assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize("path", ["/v1/nothing", "/healthz"])
def test_problem_never_echoes_input(http, path):
    marker = "123456789018"
    response = http.get(f"{path}?q={marker}", headers={"X-Request-Id": marker})
    assert marker not in response.get_data(as_text=True)


def test_unexpected_exception_is_a_generic_500_without_text(app):
    secret_text = "boom-secret-detail"

    @app.get("/explode")
    def explode():
        raise RuntimeError(secret_text)

    response = app.test_client().get("/explode")
    body = _assert_problem(response, 500, "internal_error")
    assert secret_text not in response.get_data(as_text=True)
    assert "Traceback" not in body["detail"]


def test_database_down_is_503_unavailable(app, tmp_path):
    from sqlalchemy.exc import OperationalError

    @app.get("/needs-db")
    def needs_db():
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    _assert_problem(app.test_client().get("/needs-db"), 503, "unavailable")
