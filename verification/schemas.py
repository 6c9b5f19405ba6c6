"""Request and response schemas of the verifier flow and the card authority feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp

from licensing.professions import PROFESSION_CODES
from verification.challenges import ChallengeState
from verification.outcome import rfc3339

#: Three unpadded base64url segments: the compact JWS structure. Anything else is a
#: malformed request (400); a token of this shape that fails later is 401/403/503.
COMPACT_JWS_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
OUTCOMES = ("licensed", "not_licensed", "suspended", "revoked", "deceased")
CHALLENGE_KINDS = ("verification", "presentation")


class Rfc3339(String):
    """A UTC time written as RFC 3339 with ``Z`` (output only)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).setdefault("format", "date-time")
        super().__init__(**kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if isinstance(value, datetime):
            return rfc3339(value)
        return super()._serialize(value, attr, obj, **kwargs)


class ChallengeIn(Schema):
    profession = String(
        required=True,
        validate=OneOf(PROFESSION_CODES),
        metadata={"description": "The profession the verifier wants to check."},
    )
    kind = String(
        load_default="verification",
        validate=OneOf(CHALLENGE_KINDS),
        metadata={
            "description": "`verification` (a card assertion, the default) or `presentation` "
            "(an SD-JWT VC presentation to this client's registered audience)."
        },
    )
    monitoring = Boolean(
        load_default=False,
        metadata={
            "description": "Ask the holder to consent to monitoring of this licence "
            "(shown by the card app; recorded only if the card signs it). Not asked "
            "with kind `presentation`, which has no card request."
        },
    )


class ChallengeOut(Schema):
    challenge_id = String(required=True)
    nonce = String(
        required=True,
        metadata={"description": "256 random bits; the card signs it; single use, 5 minutes."},
    )
    audience = String(required=True, metadata={"description": "The `aud` the card must sign."})
    profession = String(required=True)
    expires_at = Rfc3339(required=True)
    request_uri = String(
        metadata={
            "description": "The signed card request for the card app (a QR code's URL); "
            "kind verification only."
        },
    )
    status_uri = String(
        metadata={"description": "Where this verifier reads the answer; kind verification only."}
    )


class VerificationIn(Schema):
    assertion = String(
        required=True,
        validate=Regexp(COMPACT_JWS_PATTERN),
        metadata={
            "description": "Compact JWS signed by the card (RS256, typ card-assertion+jwt, "
            "x5c); at most 64 KiB, header at most 16 KiB, x5c at most 4 certificates.",
            "pattern": COMPACT_JWS_PATTERN,
        },
    )


class HolderOut(Schema):
    name = String(
        required=True,
        allow_none=True,
        metadata={"description": "The name on the licence (null if a presentation hid it)."},
    )
    subject = String(
        required=True,
        metadata={"description": "This verifier's own code for the person (pairwise)."},
    )


class LicenceOut(Schema):
    status = String(required=True, validate=OneOf(("active", "suspended", "revoked", "deceased")))
    registered_year = Integer(required=True, allow_none=True)
    suspended_until = String(
        required=True, allow_none=True, metadata={"format": "date", "nullable": True}
    )


class AsOfOut(Schema):
    register = Rfc3339(
        required=True,
        allow_none=True,
        metadata={
            "description": "When the register last changed for this licence; null when "
            "no licence is found (`not_licensed`)."
        },
    )
    revocation = Rfc3339(
        required=True,
        metadata={"description": "thisUpdate of the CRL the card was checked against."},
    )


class VerificationOut(Schema):
    """The one body of a verification answer (verifier flow, the challenge's status,
    presentations)."""

    verification_id = String(required=True)
    outcome = String(required=True, validate=OneOf(OUTCOMES))
    profession = String(required=True)
    holder = Nested(HolderOut, required=True, allow_none=True)
    licence = Nested(LicenceOut, required=True, allow_none=True)
    checked_at = Rfc3339(required=True)
    as_of = Nested(AsOfOut, required=True, metadata={"description": "How fresh the answer is."})
    receipt = String(
        required=True,
        metadata={
            "description": "ES256 JWS (typ verification-receipt+jwt) signed by the service; "
            "its kid is listed at /.well-known/jwks.json."
        },
    )


class VerifierOut(Schema):
    id = String(required=True)
    name = String(required=True, metadata={"description": "The verifier's registered name."})


class CardResponseOut(Schema):
    """What the card app learns: the outcome and who asked, nothing about the licence."""

    outcome = String(required=True, validate=OneOf(OUTCOMES))
    verifier = Nested(VerifierOut, required=True)


class ProblemOut(Schema):
    type = String(required=True)
    title = String(required=True)
    status = Integer(required=True)
    code = String(required=True)
    detail = String(required=True)


class ChallengeStateOut(Schema):
    state = String(required=True, validate=OneOf([state.value for state in ChallengeState]))
    verification = Nested(VerificationOut, required=True, allow_none=True)
    error = Nested(ProblemOut, required=True, allow_none=True)


class JwkOut(Schema):
    kty = String(required=True)
    crv = String(required=True)
    x = String(required=True)
    y = String(required=True)
    kid = String(required=True)
    use = String(required=True)
    alg = String(required=True)


class JwksOut(Schema):
    keys = Nested(JwkOut, many=True, required=True)


class VerificationListQuery(Schema):
    after = String(
        load_default=None,
        validate=Length(max=200),
        metadata={"description": "`next_cursor` of the previous page"},
    )
    limit = Integer(load_default=50, validate=Range(min=1, max=200))


class VerificationRecordOut(Schema):
    verification_id = String(required=True)
    profession = String(required=True)
    outcome = String(required=True)
    checked_at = String(required=True)
    subject = String(required=True, metadata={"description": "this verifier's code for the person"})
    receipt = String(
        required=True,
        metadata={"description": "the receipt, signed anew over the same facts (same id and time)"},
    )


class VerificationListOut(Schema):
    verifications = List(Nested(VerificationRecordOut), required=True)
    next_cursor = String(required=True, allow_none=True)
