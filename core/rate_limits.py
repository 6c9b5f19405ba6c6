"""Per-address rate limits of the public endpoints (holder, the card app's routes).

Limits are ``limits`` strings from the config (``HOLDER_RATE_LIMIT_CHALLENGES``,
``_SESSIONS``, ``_AUTHENTICATED``, ``_STATUS_LISTS``, ``CARD_RATE_LIMIT_REQUESTS``,
``_RESPONSES``, e.g. ``"10 per minute"``), counted
with a moving window in ``RATE_LIMIT_STORAGE_URI``: ``memory://`` by default, per process
(with N workers an address gets up to N times the limit), or ``redis://host:port/db``,
shared by every worker and instance. An unreachable store answers 503 ``unavailable``.
The address is ``request.remote_addr``; behind reverse proxies set ``TRUSTED_PROXIES``
so that it is the client's address (see ``core.proxies``). An IPv6 address counts as its
/64: one subscriber usually holds a whole /64 and could otherwise use a fresh address
per request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from core.errors import TooManyRequests, Unavailable

_LIMITER_KEY = "holder_rate_limiter"


def make_limiter(storage_uri: str | None) -> MovingWindowRateLimiter:
    """The limiter over ``storage_uri`` (default ``memory://``); a malformed URI or a
    missing storage driver fails here, at start-up, not on the first request."""
    storage = storage_from_string(storage_uri or "memory://", wrap_exceptions=True)
    return MovingWindowRateLimiter(storage)


def address_bucket(address: str | None) -> str:
    """What a limit counts: an IPv4 address, or the /64 of an IPv6 one."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def hit(limit: RateLimitItem, name: str, detail: str | None = None) -> None:
    """Counts this request's address against ``limit`` (named ``name``); 429 when over."""
    limiter: MovingWindowRateLimiter = current_app.extensions[_LIMITER_KEY]
    try:
        allowed = limiter.hit(limit, name, address_bucket(request.remote_addr))
    except StorageError:
        # Fail closed: without its counts the limit cannot be enforced.
        raise Unavailable("The rate limit store is unavailable.") from None
    if not allowed:
        raise TooManyRequests(detail)


def rate_limited(config_key: str) -> Callable:
    """Counts the request against ``config_key``'s limit for the client's address first."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            hit(parse(current_app.config[config_key]), config_key)
            return view(*args, **kwargs)

        return limited

    return decorate


def init_app(app: Flask) -> None:
    """Idempotent: every domain with rate-limited routes calls it."""
    if _LIMITER_KEY not in app.extensions:
        app.extensions[_LIMITER_KEY] = make_limiter(app.config.get("RATE_LIMIT_STORAGE_URI"))
