"""Request and response schemas of the verifier flow and the card authority feed."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Integer, Nested, String
from apiflask.validators import OneOf, Regexp

from licensing.professions import PROFESSION_CODES

#: Three unpadded base64url segments: the compact JWS structure. Anything else is a
#: malformed request (400); a token of this shape that fails later is 401/403/503.
COMPACT_JWS_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
OUTCOMES = ("licensed", "not_licensed", "suspended", "revoked")
CHALLENGE_KINDS = ("verification", "presentation")


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


class ChallengeOut(Schema):
    challenge_id = String(required=True)
    nonce = String(
        required=True,
        metadata={"description": "256 random bits; the card signs it; single use, 5 minutes."},
    )
    audience = String(required=True, metadata={"description": "The `aud` the card must sign."})
    profession = String(required=True)
    expires_at = String(required=True, metadata={"format": "date-time"})


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
    name = String(required=True, metadata={"description": "The name on the licence."})
    subject = String(
        required=True,
        metadata={"description": "This verifier's own code for the person (pairwise)."},
    )


class LicenceOut(Schema):
    status = String(required=True, validate=OneOf(("active", "suspended", "revoked")))
    registered_year = Integer(required=True)
    suspended_until = String(
        required=True, allow_none=True, metadata={"format": "date", "nullable": True}
    )


class VerificationOut(Schema):
    verification_id = String(required=True)
    outcome = String(required=True, validate=OneOf(OUTCOMES))
    profession = String(required=True)
    holder = Nested(HolderOut, required=True, allow_none=True)
    licence = Nested(LicenceOut, required=True, allow_none=True)
    checked_at = String(required=True, metadata={"format": "date-time"})
    receipt = String(
        required=True,
        metadata={
            "description": "ES256 JWS (typ verification-receipt+jwt) signed by the service; "
            "its kid is listed at /.well-known/jwks.json."
        },
    )


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
