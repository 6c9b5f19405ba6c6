"""Strict JSON for request bodies and JWS segments, and the body rules of JSON endpoints.

``loads`` accepts UTF-8 JSON only with unique member names, finite numbers, integers
within 64 bits and at most ``MAX_DEPTH`` levels of nesting: Python's parser would take a
5,000-digit integer (then fail converting it) or recurse a thousand levels deep.

``init_app`` makes every endpoint that declares a JSON body (``@bp.input(...)``) refuse
another or a missing Content-Type with 415 ``unsupported_media_type`` and an invalid
body with 400 ``invalid_request``, before any view code runs; responses keep non-ASCII
characters readable (UTF-8, no ``\\u`` escapes).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider

from core.errors import InvalidRequest, UnsupportedMediaType

MAX_DEPTH = 64
#: Signed 64-bit integers, as every JSON consumer of ours (and int64 columns) can hold.
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1
_MAX_INTEGER_DIGITS = 19  # checked before int(): no big-number conversion at all


class InvalidJson(ValueError):
    """Not strict JSON. Messages are fixed text (never a piece of the input)."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidJson("duplicate member name")
    return result


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INTEGER_DIGITS:
        raise InvalidJson("integer out of range")
    value = int(text)
    if not MIN_INTEGER <= value <= MAX_INTEGER:
        raise InvalidJson("integer out of range")
    return value


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidJson("number out of range")
    return value


def _no_constants(_name: str) -> Any:
    raise InvalidJson("NaN and Infinity are not JSON")


def _check_depth(value: Any) -> None:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise InvalidJson("nested too deeply")
            pending.extend((child, depth + 1) for child in children)


def loads(data: bytes | str) -> Any:
    """Parses strict JSON (see the module docstring); raises ``InvalidJson``."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_int=_integer,
            parse_float=_finite,
            parse_constant=_no_constants,
        )
    except UnicodeDecodeError:
        raise InvalidJson("not UTF-8") from None
    except json.JSONDecodeError:
        raise InvalidJson("not JSON") from None
    except RecursionError:
        raise InvalidJson("nested too deeply") from None
    _check_depth(value)
    return value


class StrictJSONProvider(DefaultJSONProvider):
    ensure_ascii = False  # names in Japanese stay readable in every response
    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)


def _declares_json_body(view: Any) -> bool:
    content_type = getattr(view, "_spec", {}).get("content_type")
    return content_type == "application/json"


def _check_json_body() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or not _declares_json_body(view):
        return
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("Send the body as JSON with Content-Type: application/json.")
    try:
        loads(request.get_data(cache=True))
    except InvalidJson as error:
        raise InvalidRequest(f"The body is not accepted as JSON: {error}.") from None


def init_app(app: Flask) -> None:
    app.json = StrictJSONProvider(app)
    app.before_request(_check_json_body)
