"""The client's address behind reverse proxies (rate limits and logs key on it).

``TRUSTED_PROXIES`` is how many reverse proxies stand in front of the service, each
appending the address it saw to ``X-Forwarded-For``. Only that many entries from the
right are believed; with the default 0 the header is ignored, so a client cannot pick
its own address by sending one.
"""

from __future__ import annotations

import re

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

MAX_TRUSTED_PROXIES = 10
_COUNT = re.compile(r"[0-9]{1,2}")


def trusted_proxies(value: object) -> int:
    """The setting as a count: unset, or ASCII digits from 0 to 10; anything else is
    refused (no signs, spaces, underscores or other scripts' digits)."""
    if value is None or value == "":
        return 0
    text = str(value)
    if not _COUNT.fullmatch(text) or int(text) > MAX_TRUSTED_PROXIES:
        raise ValueError("TRUSTED_PROXIES must be an integer from 0 to 10")
    return int(text)


def init_app(app: Flask) -> None:
    count = trusted_proxies(app.config.get("TRUSTED_PROXIES"))
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count)  # type: ignore[method-assign]
