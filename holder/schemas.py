"""Request and response bodies of the holder endpoints and of presentations."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from holder import credentials as creds
from holder.access_log import MAX_PAGE_SIZE
from licensing.professions import PROFESSION_CODES


class HolderChallengeOut(Schema):
    nonce = String(required=True)
    audience = String(required=True)
    expires_at = String(required=True, metadata={"format": "date-time"})


class SessionIn(Schema):
    assertion = String(required=True, validate=Length(min=1, max=64 * 1024))


class SessionOut(Schema):
    session_token = String(required=True)
    expires_at = String(required=True, metadata={"format": "date-time"})


class AccessLogQuery(Schema):
    limit = Integer(load_default=50, validate=Range(min=1, max=MAX_PAGE_SIZE))
    cursor = String(load_default=None, validate=Length(min=1, max=200))


class AccessLogEntry(Schema):
    verifier = String(required=True)
    at = String(required=True, metadata={"format": "date-time"})
    profession = String(required=True, allow_none=True)
    outcome = String(required=True)


class AccessLogOut(Schema):
    entries = List(Nested(AccessLogEntry), required=True)
    next_cursor = String(required=True, allow_none=True)


class CredentialIn(Schema):
    profession = String(required=True, validate=OneOf(PROFESSION_CODES))


class CredentialOut(Schema):
    credential = String(required=True)


class PresentationIn(Schema):
    presentation = String(required=True, validate=Length(min=1, max=64 * 1024))
    nonce = String(required=True, validate=Length(min=1, max=creds.MAX_NONCE_CHARS))
    audience = String(required=True, validate=Length(min=1, max=creds.MAX_AUDIENCE_CHARS))
