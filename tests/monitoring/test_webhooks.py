"""Webhook registration refuses SSRF targets; pushes are pinned, short and bounded."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitoring import webhooks
from monitoring.errors import InvalidWebhook
from tests.fixtures.verification import problem

PUBLIC = "93.184.215.14"  # a global unicast address (no DNS needed)


def put(http, headers, url):
    return http.put("/v1/monitoring/webhook", json={"url": url}, headers=headers)


def test_https_to_a_public_address_is_accepted_and_replaced(http, verifier):
    _, headers = verifier
    response = put(http, headers, f"https://{PUBLIC}/scim/events?tenant=7")
    assert response.status_code == 200
    assert response.get_json()["url"] == f"https://{PUBLIC}/scim/events?tenant=7"
    assert put(http, headers, f"https://{PUBLIC}:8443/v2").get_json()["url"].endswith(":8443/v2")


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/events",  # not https
        "ftp://93.184.215.14/events",
        "https://10.1.2.3/events",  # private
        "https://192.168.0.10/events",
        "https://172.16.5.5/events",
        "https://100.64.0.1/events",  # shared address space
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://[fe80::1]/events",
        "https://[fc00::1]/events",  # unique local
        "https://[::ffff:10.0.0.1]/events",  # IPv4-mapped private
        "https://0.0.0.0/events",
        "https://224.0.0.1/events",  # multicast
        "https://user:secret@93.184.215.14/events",  # credentials
        "https://93.184.215.14/events#frag",
        "https:///events",
        "https://93.184.215.14:99999/events",
        "https://93.184.215.14/ev\x00ents",
        "https://93.184.215.14/ev ents",
        "https://exämple.jp/events",
        "not a url",
    ],
)
def test_unsafe_webhooks_are_refused(http, verifier, url):
    _, headers = verifier
    problem(put(http, headers, url), 422, "invalid_webhook")


def test_loopback_needs_the_insecure_switch(app, http, verifier):
    _, headers = verifier
    app.config["ALLOW_INSECURE_WEBHOOKS"] = None
    for url in ("http://127.0.0.1:8080/e", "https://127.0.0.1/e", "https://[::1]/e"):
        problem(put(http, headers, url), 422, "invalid_webhook")
    app.config["ALLOW_INSECURE_WEBHOOKS"] = "1"
    assert put(http, headers, "http://127.0.0.1:8080/e").status_code == 200
    # Even then, http goes to loopback only.
    problem(put(http, headers, f"http://{PUBLIC}/e"), 422, "invalid_webhook")


def test_a_name_resolving_to_a_private_address_is_refused(app, http, verifier, monkeypatch):
    _, headers = verifier

    def resolves_to(*addresses):
        def fake(host, port, type=0):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

        return fake

    monkeypatch.setattr(socket, "getaddrinfo", resolves_to(PUBLIC, "10.0.0.7"))
    problem(put(http, headers, "https://hr.example.jp/events"), 422, "invalid_webhook")
    monkeypatch.setattr(socket, "getaddrinfo", resolves_to(PUBLIC))
    assert put(http, headers, "https://hr.example.jp/events").status_code == 200


def test_a_name_that_does_not_resolve_is_refused(http, verifier, monkeypatch):
    _, headers = verifier

    def fails(*_args, **_kwargs):
        raise socket.gaierror("no such name")

    monkeypatch.setattr(socket, "getaddrinfo", fails)
    problem(put(http, headers, "https://nowhere.invalid/events"), 422, "invalid_webhook")


def test_configured_networks_are_allowed(app, http, verifier):
    _, headers = verifier
    app.config["MONITORING_ALLOWED_NETWORKS"] = "10.0.0.0/8, fd00::/8"
    assert put(http, headers, "https://10.1.2.3/events").status_code == 200
    assert put(http, headers, "https://[fd00::5]/events").status_code == 200
    problem(put(http, headers, "https://192.168.1.1/events"), 422, "invalid_webhook")


def test_webhook_needs_a_verifier_and_a_sane_body(http, verifier, make_client):
    _, headers = verifier
    problem(put(http, headers, "https://" + "a" * 2100 + ".jp/"), 400, "invalid_request")
    problem(
        http.put("/v1/monitoring/webhook", json={"url": 5}, headers=headers), 400, "invalid_request"
    )
    problem(http.put("/v1/monitoring/webhook", json={}, headers=headers), 400, "invalid_request")
    _, regulator_headers = make_client("regulator")
    problem(put(http, regulator_headers, f"https://{PUBLIC}/e"), 403, "forbidden")
    problem(
        http.put("/v1/monitoring/webhook", json={"url": f"https://{PUBLIC}/e"}),
        401,
        "unauthenticated",
    )


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_url_parser_never_crashes_and_accepts_only_http_urls(text):
    try:
        scheme, host, port, path = webhooks.parse_url(text)
    except InvalidWebhook:
        return
    assert scheme in ("https", "http") and host and 0 < port < 65536 and path.startswith("/")


# --- the push itself: pinned, bounded -------------------------------------------------


class _Slow(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        if self.path == "/big":
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024 * 1024))
            self.end_headers()
            try:
                for _ in range(50 * 1024):
                    self.wfile.write(b"x" * 1024)
            except OSError:
                pass  # the client hung up after its small limit, as it should
            return
        time.sleep(1.0)
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_push_times_out_and_reads_little_of_a_large_answer(slow_server, monkeypatch):
    monkeypatch.setattr(webhooks, "READ_TIMEOUT", 0.2)
    transport = webhooks.Transport()
    slow = webhooks.Target("http", "127.0.0.1", "127.0.0.1", slow_server, "/slow")
    assert transport.post(slow, b"x").outcome == "timeout"
    big = webhooks.Target("http", "127.0.0.1", "127.0.0.1", slow_server, "/big")
    started = time.monotonic()
    result = transport.post(big, b"x")
    assert result.outcome == "accepted"
    assert time.monotonic() - started < 1.0  # did not read 50 MiB
    transport.close()


def test_push_goes_to_the_address_that_was_checked(monkeypatch):
    # The name is resolved once, by check_target; the connection uses that address even
    # if the name would resolve elsewhere a moment later (DNS rebinding).
    answers = iter([PUBLIC, "127.0.0.1"])

    def rebinding(host, port, type=0):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    target = webhooks.check_target("https://hr.example.jp/events", {})
    assert target.address == PUBLIC and target.host == "hr.example.jp"
