"""Per-address rate limits of the public holder endpoints.

Limits are ``limits`` strings from the config (``HOLDER_RATE_LIMIT_CHALLENGES``,
``_SESSIONS``, ``_AUTHENTICATED``, ``_STATUS_LISTS``, e.g. ``"10 per minute"``), counted
with a moving window in ``RATE_LIMIT_STORAGE_URI``: ``memory://`` by default, per process
(with N workers an address gets up to N times the limit), or ``redis://host:port/db``,
shared by every worker and instance. An unreachable store answers 503 ``unavailable``.
The address is ``request.remote_addr``; behind reverse proxies set ``TRUSTED_PROXIES``
so that it is the client's address (see ``core.proxies``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app, request
from limits import parse
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


def rate_limited(config_key: str) -> Callable:
    """Counts the request against ``config_key``'s limit for the client's address first."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            value = current_app.config[config_key]
            address = request.remote_addr or "unknown"
            limiter: MovingWindowRateLimiter = current_app.extensions[_LIMITER_KEY]
            try:
                allowed = limiter.hit(parse(value), config_key, address)
            except StorageError:
                # Fail closed: without its counts the limit cannot be enforced.
                raise Unavailable("The rate limit store is unavailable.") from None
            if not allowed:
                raise TooManyRequests()
            return view(*args, **kwargs)

        return limited

    return decorate


def init_app(app: Flask) -> None:
    app.extensions[_LIMITER_KEY] = make_limiter(app.config.get("RATE_LIMIT_STORAGE_URI"))
