"""examples/verify_credential.py: a third party verifies our credentials offline with a
maintained JOSE library (joserfc) and only the JWKS and the status list; and the
issue's end-to-end story: a doctor gets a credential with their card, a platform
verifies a presentation offline and online, the licence is revoked, both say so."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from holder import sd_jwt
from holder.credentials import STATUS_LIST_CACHE_KEY
from tests.fixtures.holder import key_binding_jwt, present

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "verify_credential.py"
PLATFORM = "https://locum-agency.example"


def _run(
    tmp_path: Path,
    presentation: str,
    jwks: dict,
    status_list: str | None,
    *,
    nonce: str,
    audience: str = PLATFORM,
    issuer: str,
    now: int | None = None,
):
    (tmp_path / "presentation.txt").write_text(presentation)
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    command = [
        sys.executable,
        "-I",  # isolated: no current directory, no PYTHON* variables
        str(EXAMPLE),
        "--presentation",
        str(tmp_path / "presentation.txt"),
        "--jwks",
        str(tmp_path / "jwks.json"),
        "--nonce",
        nonce,
        "--audience",
        audience,
        "--issuer",
        issuer,
    ]
    if status_list is not None:
        (tmp_path / "status.jwt").write_text(status_list)
        command += ["--status-list", str(tmp_path / "status.jwt")]
    if now is not None:
        command += ["--now", str(now)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


@pytest.fixture
def doctor_with_credential(http, licensed_holder, holder_audience):
    """A doctor signs in with their card and gets a credential (over HTTP)."""
    holder = licensed_holder("doctor", name="鈴木 一郎")
    nonce = http.post("/v1/holder/challenges").get_json()["nonce"]
    session = http.post(
        "/v1/holder/sessions", json={"assertion": holder.sign(nonce, holder_audience)}
    )
    token = session.get_json()["session_token"]
    response = http.post(
        "/v1/holder/credentials",
        json={"profession": "doctor"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    return holder, response.get_json()["credential"]


def _published(http, credential: str) -> tuple[dict, str]:
    """What a platform downloads: the JWKS and the credential's status list."""
    jwks = http.get("/.well-known/jwks.json").get_json()
    issuer_jwt = sd_jwt.parse(credential).issuer_jwt
    payload = json.loads(sd_jwt.jws.b64url_decode(issuer_jwt.split(".")[1]))
    path = "/v1/status-lists/" + payload["status"]["status_list"]["uri"].rsplit("/", 1)[1]
    response = http.get(path)
    assert response.status_code == 200
    return jwks, response.get_data(as_text=True)


def _present(holder, credential, nonce, disclose=("name", "registered_year"), audience=PLATFORM):
    return present(credential, holder, nonce=nonce, audience=audience, disclose=disclose)


def test_example_uses_only_a_third_party_jose_library():
    tree = ast.parse(EXAMPLE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "joserfc" in imported
    ours = {"core", "verification", "licensing", "clients", "identity", "seed", "app", "jose"}
    assert not imported & ours


def test_end_to_end_offline_and_online_then_revoked(
    app, tmp_path, http, doctor_with_credential, regulator, audience, make_platform, online_check
):
    holder, credential = doctor_with_credential

    # The platform verifies offline with joserfc, the JWKS and the status list only.
    jwks, status_list = _published(http, credential)
    presentation = _present(holder, credential, "offline-nonce-1")
    code, result = _run(
        tmp_path, presentation, jwks, status_list, nonce="offline-nonce-1", issuer=audience
    )
    assert code == 0, result
    assert result["verified"] and result["status"] == "valid" and result["profession"] == "doctor"
    assert result["disclosed"] == {"name": "鈴木 一郎", "registered_year": 2011}

    # ... and online, with the same kind of presentation, to a nonce the service issued.
    platform = make_platform("Locum agency", PLATFORM)
    online = online_check(platform, credential, holder)
    assert online.status_code == 200 and online.get_json()["outcome"] == "licensed"

    # The regulator revokes the licence.
    revoked = http.post(
        f"/v1/licences/{holder.licences[0].id}/revoke",
        json={"reason": "struck off"},
        headers=regulator[1],
    )
    assert revoked.status_code == 200

    # Offline: the next status list (once the served one's TTL is over) says invalid.
    app.extensions.pop(STATUS_LIST_CACHE_KEY, None)
    jwks, status_list = _published(http, credential)
    presentation = _present(holder, credential, "offline-nonce-2")
    code, result = _run(
        tmp_path, presentation, jwks, status_list, nonce="offline-nonce-2", issuer=audience
    )
    assert code == 2, result
    assert result["verified"] and result["status"] == "invalid"

    # Online: the live status is revoked.
    online = online_check(platform, credential, holder)
    assert online.status_code == 200, online.get_data(as_text=True)
    assert online.get_json()["outcome"] == "revoked"


def test_example_keeps_undisclosed_claims_hidden(tmp_path, http, doctor_with_credential, audience):
    holder, credential = doctor_with_credential
    jwks, status_list = _published(http, credential)
    presentation = _present(holder, credential, "n-1", disclose=["registered_year"])
    code, result = _run(tmp_path, presentation, jwks, status_list, nonce="n-1", issuer=audience)
    assert code == 0, result
    assert result["disclosed"] == {"registered_year": 2011}
    assert "鈴木" not in json.dumps(result, ensure_ascii=False)


@pytest.mark.parametrize(
    "case",
    [
        "no_key_binding",
        "wrong_nonce",
        "wrong_audience",
        "expired",
        "wrong_issuer",
        "foreign_jwks",
        "forged_disclosure",
    ],
)
def test_example_rejects(tmp_path, http, doctor_with_credential, audience, case):
    holder, credential = doctor_with_credential
    jwks, status_list = _published(http, credential)
    presentation = _present(holder, credential, "n-1")
    kwargs = {"nonce": "n-1", "issuer": audience}
    if case == "no_key_binding":
        presentation = credential
    elif case == "wrong_nonce":
        kwargs["nonce"] = "n-2"
    elif case == "wrong_audience":
        kwargs["audience"] = "https://other.example"
    elif case == "expired":
        kwargs["now"] = int((datetime.now(UTC) + timedelta(hours=25)).timestamp())
    elif case == "wrong_issuer":
        kwargs["issuer"] = "urn:someone-else"
    elif case == "foreign_jwks":
        from cryptography.hazmat.primitives.asymmetric import ec
        from joserfc.jwk import ECKey

        other = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
        jwks = {"keys": [dict(other.as_dict(private=False), kid=k["kid"]) for k in jwks["keys"]]}
    elif case == "forged_disclosure":
        parsed = sd_jwt.parse(_present(holder, credential, "n-1", disclose=["registered_year"]))
        extra = sd_jwt.make_disclosure("name", "Dr. Impostor").encoded
        chosen = parsed.sd_jwt + extra + "~"
        presentation = chosen + key_binding_jwt(
            chosen,
            holder.card.private_key,
            nonce="n-1",
            audience=PLATFORM,
            issued_at=int(datetime.now(UTC).timestamp()),
        )
    code, result = _run(tmp_path, presentation, jwks, status_list, **kwargs)
    assert code == 1, result
    assert result["verified"] is False
