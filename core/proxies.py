"""The client's address behind reverse proxies (rate limits and logs key on it).

``TRUSTED_PROXIES`` (checked in ``core.config``: 0 to 10) is how many reverse proxies
stand in front of the service, each appending the address it saw to
``X-Forwarded-For``. Only that many entries from the right are believed; with the
default 0 the header is ignored, so a client cannot pick its own address by sending one.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def init_app(app: Flask) -> None:
    count = app.config["TRUSTED_PROXIES"]
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count)  # type: ignore[method-assign]
