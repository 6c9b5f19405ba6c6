"""Talking to the licence verification service: JSON calls, and the signed card request.

The card app is configured for one service (``--service-url``, and the ``iss`` that
service signs with). A card request is accepted only when it comes from under that
URL, is an ES256 ``card-request+jwt`` signed with a key of the service's JWKS, names
that issuer, is not expired and sends the answer back to the same service. Anything
else is refused before the holder is asked for a PIN.
"""

from __future__ import annotations

import json
import time
import unicodedata
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from core import jws

REQUEST_TYPE = "card-request+jwt"
#: What a holder can be asked to agree to, and can be told about.
KNOWN_CONSENTS = ("monitoring",)
MAX_RESPONSE_BYTES = 256 * 1024
#: Seconds of clock difference tolerated between the phone or PC and the service.
LEEWAY = 60
MAX_TEXT = 200
TIMEOUT = 15


class ServiceProblem(Exception):
    """A one-line message for the holder; ``code`` is the service's error code, if any."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class ServiceUnreachable(ServiceProblem):
    def __init__(self, url: str) -> None:
        super().__init__(f"no service at {url}")
        self.url = url


class RequestRefused(ServiceProblem):
    """The card request is not one to sign; nothing was signed or sent."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass(frozen=True)
class CardRequest:
    challenge_id: str
    nonce: str
    audience: str
    verifier_id: str
    verifier_name: str
    #: None for a sign-in request (the holder's own page), which asks for no licence.
    profession: str | None
    consent: tuple[str, ...]
    response_uri: str
    expires_at: int


class Service:
    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServiceProblem("the service URL must be an http(s) URL")
        self.base_url = base_url.rstrip("/")

    def owns(self, url: str) -> bool:
        """Whether ``url`` is on this service (same scheme, host and port, under its path)."""
        return url.startswith(self.base_url + "/")

    def call(
        self,
        method: str,
        url: str,
        body: Any = None,
        *,
        token: str | None = None,
        accept: str = "application/json",
    ) -> Answer:
        """``url`` is absolute (on this service) or a path; problems stay answers."""
        target = url if url.startswith(("http://", "https://")) else self.base_url + url
        headers = {"Accept": accept}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(target, data=data, headers=headers, method=method)  # noqa: S310 - http(s) checked
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                status, raw, kind = (
                    response.status,
                    response.read(MAX_RESPONSE_BYTES + 1),
                    response.headers.get_content_type(),
                )
        except urllib.error.HTTPError as error:
            status, raw, kind = (
                error.code,
                error.read(MAX_RESPONSE_BYTES + 1),
                error.headers.get_content_type(),
            )
        except (urllib.error.URLError, OSError):
            raise ServiceUnreachable(self.base_url) from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ServiceProblem("the service answered with too much data")
        if kind.endswith("json"):
            try:
                return Answer(status, json.loads(raw))
            except ValueError:
                raise ServiceProblem("the service answered with malformed JSON") from None
        return Answer(status, raw.decode("ascii", "replace"))

    def jwks_keys(self) -> dict[str, Any]:
        answer = self.call("GET", "/.well-known/jwks.json")
        keys: dict[str, Any] = {}
        entries = answer.body.get("keys") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not isinstance(entries, list):
            raise RequestRefused("the service's key set (JWKS) could not be read")
        for entry in entries:
            kid = entry.get("kid") if isinstance(entry, dict) else None
            if not isinstance(kid, str):
                continue
            try:
                keys[kid] = jws.public_key_from_jwk(entry, "ES256")
            except jws.JwsError:
                continue  # another kind of key: not one card requests are signed with
        return keys

    def card_request(self, request_url: str, expected_issuer: str) -> CardRequest:
        """Fetches and checks the card request at ``request_url``; raises ``RequestRefused``."""
        if not self.owns(request_url):
            raise RequestRefused(
                f"this request is not from the service the card app trusts ({self.base_url})"
            )
        answer = self.call("GET", request_url, accept="application/jwt")
        if answer.status == 404:
            raise RequestRefused(
                "this request is unknown, expired or already answered; ask for a new one",
                "not_found",
            )
        if answer.status != 200 or not isinstance(answer.body, str):
            raise RequestRefused(f"the service did not give a card request (HTTP {answer.status})")
        keys = self.jwks_keys()
        try:
            parsed = jws.verify_key_id_signed(
                answer.body.strip(), typ=REQUEST_TYPE, algorithm="ES256", key_for_kid=keys.get
            )
        except jws.JwsError:
            raise RequestRefused(
                "the request is not signed by the service (unsigned, tampered or of another kind)"
            ) from None
        return self._checked(parsed.payload, expected_issuer)

    def _checked(self, claims: dict[str, Any], expected_issuer: str) -> CardRequest:
        if claims.get("iss") != expected_issuer:
            raise RequestRefused(
                f"the request was signed by another service, not {expected_issuer}"
            )
        now = int(time.time())
        expires_at, issued_at = claims.get("exp"), claims.get("iat")
        if not _is_int(expires_at) or not _is_int(issued_at) or issued_at > now + LEEWAY:
            raise RequestRefused("the request has no valid time; ask for a new one")
        if expires_at <= now:
            raise RequestRefused("the request has expired; ask the verifier for a new one")
        verifier = claims.get("verifier")
        consent = claims.get("consent", [])
        texts = [claims.get(name) for name in ("challenge_id", "nonce", "aud")]
        if "profession" in claims:
            texts.append(claims["profession"])
        if not isinstance(verifier, dict):
            raise RequestRefused("the request does not say who asks")
        texts += [verifier.get("id"), verifier.get("name")]
        if not all(_is_plain_text(text) for text in texts):
            raise RequestRefused("the request holds a missing or unreadable field")
        if not isinstance(consent, list) or not all(c in KNOWN_CONSENTS for c in consent):
            raise RequestRefused("the request asks for a consent this card app cannot explain")
        response_uri = claims.get("response_uri")
        if not isinstance(response_uri, str) or not self.owns(response_uri):
            raise RequestRefused("the request would send the answer to another service")
        return CardRequest(
            challenge_id=claims["challenge_id"],
            nonce=claims["nonce"],
            audience=claims["aud"],
            verifier_id=verifier["id"],
            verifier_name=verifier["name"],
            profession=claims.get("profession"),
            consent=tuple(dict.fromkeys(consent)),
            response_uri=response_uri,
            expires_at=expires_at,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**53


def _is_plain_text(value: Any) -> bool:
    """Non-empty, short, and without control or formatting characters: what the holder
    reads must be what the service signed (no terminal escapes, no bidi overrides)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TEXT
        and value == value.strip()
        and not any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)
    )
