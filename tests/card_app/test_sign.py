"""``licence-card sign`` against a stub service: what the holder sees, what is signed,
and every request it must refuse before asking for a PIN."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from card_app.cli import main
from card_app.service import RequestRefused, Service
from core import jws


@pytest.fixture
def pin_file(tmp_path):
    path = tmp_path / "pin"
    path.write_text("1234\n")
    return path


@pytest.fixture(name="sign")
def sign_fixture(run):
    """``licence-card sign URL --card CARD --pin-file PIN ...``."""

    def _sign(url: str, card: str, pin: Path, *args: str, **options):
        return run("sign", url, "--card", card, "--pin-file", str(pin), *args, **options)

    return _sign


@pytest.fixture
def run(stub_service):
    def _run(*args: str, lang: str = "en_GB.UTF-8", input: str | None = None):
        env = {
            "LANG": lang,
            "LC_ALL": "",
            "LC_MESSAGES": "",
            "LICENCE_CARD_SERVICE_URL": stub_service.url,
        }
        return CliRunner().invoke(main, list(args), env=env, input=input)

    return _run


def _posted_claims(stub_service) -> dict:
    [(path, body)] = stub_service.posted
    assert path.endswith("/response")
    return jws.parse_compact(body["assertion"]).payload


def test_signs_for_the_named_verifier_and_posts_the_answer(run, stub_service, issue_card, pin_file):
    card = issue_card()
    claims = stub_service.claims()
    url = stub_service.card_request(claims)

    result = run("sign", url, "--card", str(card.path), "--pin-file", str(pin_file), "--yes")

    assert result.exit_code == 0, result.output
    assert "St Luke's HR asks to verify your doctor licence." in result.output
    assert "Result: licensed (St Luke's HR)" in result.output
    [(_, body)] = stub_service.posted
    assertion = body["assertion"]
    jws.verify_parsed(jws.parse_compact(assertion), card.certificate.public_key(), "RS256")
    payload = jws.parse_compact(assertion).payload
    assert payload["verifier"] == claims["verifier"]["id"]
    assert payload["nonce"] == claims["nonce"]
    assert payload["aud"] == claims["aud"]
    assert payload["exp"] - payload["iat"] == 300
    assert "consent" not in payload


def test_a_sign_in_request_names_no_licence_and_is_signed_for_the_portal(
    run, stub_service, issue_card, pin_file
):
    claims = stub_service.claims(aud="urn:licence-verification:local/holder")
    claims["verifier"] = {"id": "holder-portal", "name": "Licence holder page"}
    del claims["profession"]
    url = stub_service.card_request(claims)

    result = run(
        "sign", url, "--card", str(issue_card().path), "--pin-file", str(pin_file), "--yes"
    )

    assert result.exit_code == 0, result.output
    assert "Licence holder page: sign in with your card." in result.output
    payload = _posted_claims(stub_service)
    assert (payload["aud"], payload["verifier"]) == (claims["aud"], "holder-portal")


def test_speaks_japanese_when_the_locale_is_japanese(sign, run, stub_service, issue_card, pin_file):
    url = stub_service.card_request(stub_service.claims(profession="nurse", consent=["monitoring"]))
    result = sign(url, str(issue_card().path), pin_file, "--yes", lang="ja_JP.UTF-8")
    assert result.exit_code == 0, result.output
    assert "St Luke's HR があなたの看護師免許の確認を求めています。" in result.output
    assert "次への同意を求めています" in result.output
    assert "送信しました。結果: licensed" in result.output


@pytest.mark.parametrize(
    ("answers", "args", "consent"),
    [
        ("y\ny\n", (), ["monitoring"]),  # agrees when asked
        ("n\ny\n", (), None),  # declines the consent, still answers
        ("", ("--yes", "--consent", "monitoring"), ["monitoring"]),
        ("", ("--yes",), None),  # --yes alone never gives a consent
    ],
)
def test_consent_is_signed_only_when_agreed(
    sign, stub_service, issue_card, pin_file, answers, args, consent
):
    url = stub_service.card_request(stub_service.claims(consent=["monitoring"]))
    result = sign(url, str(issue_card().path), pin_file, *args, input=answers)
    assert result.exit_code == 0, result.output
    assert "told from now on when your licence status changes" in result.output
    assert _posted_claims(stub_service).get("consent") == consent


def test_declining_sends_nothing(sign, run, stub_service, issue_card, pin_file):
    url = stub_service.card_request()
    result = sign(url, str(issue_card().path), pin_file, input="n\n")
    assert result.exit_code == 1
    assert "Not signed. Nothing was sent." in result.output
    assert stub_service.posted == []


def test_pin_is_asked_without_echo(run, stub_service, issue_card, monkeypatch):
    asked = []
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or "1234")
    url = stub_service.card_request()
    result = run("sign", url, "--card", str(issue_card().path), "--yes")
    assert result.exit_code == 0, result.output
    assert asked == ["Card PIN (user authentication): "]


def test_wrong_pin_is_one_line_and_nothing_is_sent(sign, run, stub_service, issue_card, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("9999")
    url = stub_service.card_request()
    result = sign(url, str(issue_card().path), wrong, "--yes")
    assert result.exit_code == 1
    assert (
        result.output.splitlines()[-1] == "Error: Wrong PIN: 2 attempts left before the card locks."
    )
    assert stub_service.posted == []


def test_a_problem_from_the_service_is_shown(sign, run, stub_service, issue_card, pin_file):
    claims = stub_service.claims()
    url = stub_service.card_request(claims)
    stub_service.serve_json(
        f"/v1/challenges/{claims['challenge_id']}/response",
        {"code": "invalid_assertion", "detail": "The assertion names another verifier."},
        status=401,
    )
    result = sign(url, str(issue_card().path), pin_file, "--yes")
    assert result.exit_code == 1
    assert "Refused: invalid_assertion (The assertion names another verifier.)" in result.output


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(jws.b64url_decode(payload))
    claims["verifier"]["name"] = "Trusted Hospital"
    return ".".join([header, jws.b64url_encode(json.dumps(claims).encode()), signature])


def _unsigned(stub, claims) -> str:
    header = jws.b64url_encode(json.dumps({"alg": "none", "typ": "card-request+jwt"}).encode())
    return f"{header}.{jws.b64url_encode(json.dumps(claims).encode())}."


def _foreign_key(stub, claims) -> str:
    impostor = ec.generate_private_key(ec.SECP256R1())
    headers = {"typ": "card-request+jwt", "kid": stub.signing_key.kid}
    return jws.sign(claims, impostor, "ES256", headers=headers)


REFUSALS = {
    "tampered": (lambda stub, claims: _tampered(stub.sign(claims)), "not signed by the service"),
    "unsigned": (_unsigned, "not signed by the service"),
    "foreign key": (_foreign_key, "not signed by the service"),
    "wrong typ": (
        lambda stub, claims: stub.sign(claims, typ="card-assertion+jwt"),
        "not signed by the service",
    ),
    "extra header": (
        lambda stub, claims: stub.sign(claims, jku="https://evil.example/jwks"),
        "not signed by the service",
    ),
    "not a JWS": (lambda stub, claims: "hello", "not signed by the service"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refuses_requests_the_service_did_not_sign(
    sign, run, stub_service, issue_card, pin_file, case
):
    make, reason = REFUSALS[case]
    claims = stub_service.claims()
    url = stub_service.card_request(claims, token=make(stub_service, claims))
    result = sign(url, str(issue_card().path), pin_file, "--yes")
    assert result.exit_code == 1
    assert result.output.startswith("This request will not be signed:")
    assert reason in result.output
    assert result.output.count("\n") == 1
    assert stub_service.posted == []


CLAIM_REFUSALS = {
    "another issuer": ({"iss": "urn:other-service"}, "signed by another service"),
    "expired": ({"exp": int(time.time()) - 1}, "expired"),
    "issued in the future": ({"iat": int(time.time()) + 3600}, "no valid time"),
    "answer elsewhere": (
        {"response_uri": "https://evil.example/v1/challenges/x/response"},
        "another service",
    ),
    "terminal escape in name": (
        {"verifier": {"id": "c1", "name": "HR\x1b[2J Trusted"}},
        "unreadable field",
    ),
    "bidi override in name": (
        {"verifier": {"id": "c1", "name": "HR \u202eRH"}},
        "unreadable field",
    ),
    "huge name": ({"verifier": {"id": "c1", "name": "H" * 10_000}}, "unreadable field"),
    "no verifier": ({"verifier": None}, "does not say who asks"),
    "unknown consent": ({"consent": ["sell-my-data"]}, "cannot explain"),
    "number as nonce": ({"nonce": 12345}, "unreadable field"),
    "huge number": ({"nonce": 10**30}, "will not be signed"),
}


@pytest.mark.parametrize("case", sorted(CLAIM_REFUSALS))
def test_refuses_signed_requests_it_must_not_answer(
    sign, run, stub_service, issue_card, pin_file, case
):
    overrides, reason = CLAIM_REFUSALS[case]
    url = stub_service.card_request(stub_service.claims(**overrides))
    result = sign(url, str(issue_card().path), pin_file, "--yes")
    assert result.exit_code == 1, result.output
    assert reason in result.output
    assert stub_service.posted == []


def test_refuses_a_request_from_another_service(run, stub_service, issue_card, pin_file):
    url = stub_service.card_request()
    result = CliRunner().invoke(
        main,
        [
            "sign",
            url,
            "--card",
            str(issue_card().path),
            "--pin-file",
            str(pin_file),
            "--yes",
            "--service-url",
            "http://127.0.0.1:1",
        ],
        env={"LANG": "C"},
    )
    assert result.exit_code == 1
    assert "not from the service the card app trusts (http://127.0.0.1:1)" in result.output
    assert stub_service.posted == []


def test_unknown_request_and_absent_service_are_one_line(run, stub_service, issue_card, pin_file):
    card = str(issue_card().path)
    result = run("sign", f"{stub_service.url}/r/unknown", "--card", card, "--yes")
    assert result.exit_code == 1
    assert "unknown, expired or already answered" in result.output
    result = CliRunner().invoke(
        main,
        [
            "sign",
            "http://127.0.0.1:1/r/x",
            "--card",
            card,
            "--yes",
            "--service-url",
            "http://127.0.0.1:1",
        ],
        env={"LANG": "C"},
    )
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no service at http://127.0.0.1:1"


def test_card_choice_is_exactly_one(run, stub_service, issue_card):
    url = stub_service.card_request()
    assert run("sign", url, "--yes").exit_code == 2
    both = run("sign", url, "--card", str(issue_card().path), "--pkcs11-module", "x.so", "--yes")
    assert both.exit_code == 2
    assert "exactly one of --card and --pkcs11-module" in both.output


def test_signs_through_a_pkcs11_token(run, stub_service, issue_card, softhsm_token, tmp_path):
    issued = issue_card()
    token = softhsm_token(issued)
    pin = tmp_path / "pin"
    pin.write_text(token.pin)
    url = stub_service.card_request()
    result = run(
        "sign",
        url,
        "--pkcs11-module",
        token.module,
        "--token-label",
        token.label,
        "--pin-file",
        str(pin),
        "--yes",
    )
    assert result.exit_code == 0, result.output
    [(_, body)] = stub_service.posted
    jws.verify_parsed(
        jws.parse_compact(body["assertion"]), issued.certificate.public_key(), "RS256"
    )
    token.lock()
    result = run(
        "sign",
        stub_service.card_request(),
        "--pkcs11-module",
        token.module,
        "--pin-file",
        str(pin),
        "--yes",
    )
    assert result.exit_code == 1
    assert "PIN is locked" in result.output


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "iss",
                "challenge_id",
                "nonce",
                "aud",
                "verifier",
                "profession",
                "consent",
                "response_uri",
                "iat",
                "exp",
            ]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=30),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=8,
        ),
    )
)
def test_any_claims_are_accepted_whole_or_refused(overrides):
    service = Service("http://127.0.0.1:9")
    now = int(time.time())
    claims = {
        "iss": "urn:licence-verification:local",
        "challenge_id": "abc",
        "nonce": "n",
        "aud": "urn:licence-verification:local",
        "verifier": {"id": "c1", "name": "HR"},
        "profession": "doctor",
        "consent": [],
        "response_uri": "http://127.0.0.1:9/v1/challenges/abc/response",
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    try:
        request = service._checked(claims, "urn:licence-verification:local")
    except RequestRefused as refused:
        assert "\n" not in str(refused)
    else:
        assert request.verifier_name == claims["verifier"]["name"]
        assert service.owns(request.response_uri)


def test_hostile_inputs_are_refused_in_one_line(run, stub_service, issue_card, tmp_path):
    card = str(issue_card().path)
    huge = stub_service.card_request(token="a" * (300 * 1024))
    result = run("sign", huge, "--card", card, "--yes")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "Error: the service answered with too much data"

    bad_id = run("sign", stub_service.card_request(), "--pkcs11-module", "x.so", "--key-id", "zz")
    assert bad_id.exit_code == 2
    assert "the key id in hexadecimal" in bad_id.output

    empty = tmp_path / "empty"
    empty.write_text("")
    no_pin = run(
        "sign", stub_service.card_request(), "--card", card, "--pin-file", str(empty), "--yes"
    )
    assert no_pin.exit_code == 1
    assert "The PIN is 4 digits" in no_pin.output
    assert stub_service.posted == []

    not_http = CliRunner().invoke(
        main, ["sign", "file:///etc/passwd", "--card", card, "--service-url", "file:///etc"]
    )
    assert not_http.exit_code == 1
    assert "must be an http(s) URL" in not_http.output


def test_card_errors_speak_japanese(run, stub_service, issue_card, softhsm_token, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("9999")
    virtual = run(
        "sign", stub_service.card_request(), "--card", str(issue_card().path),
        "--pin-file", str(wrong), "--yes", lang="ja_JP.UTF-8",
    )  # fmt: skip
    assert virtual.output.splitlines()[-1] == (
        "エラー: 暗証番号が違います。あと2回間違えるとカードがロックされます。"
    )
    token = softhsm_token(issue_card())
    args = ["--pkcs11-module", token.module, "--pin-file", str(wrong), "--yes"]
    run("sign", stub_service.card_request(), *args, lang="ja_JP.UTF-8")
    low = run("sign", stub_service.card_request(), *args, lang="ja_JP.UTF-8")
    assert low.output.splitlines()[-1] == (
        "エラー: 暗証番号が違います。ロックまでの残り回数がわずかです。"
    )
    assert stub_service.posted == []
