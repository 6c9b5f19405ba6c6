"""holder domain: what the licence holder does with the card: sign-in sessions, the
access log, credentials (SD-JWT VC), status lists and online presentations."""

from __future__ import annotations

import logging

from flask import Flask

from core.config import DEFAULT_PUBLIC_BASE_URL

log = logging.getLogger("licence_service.holder")


def init_app(app: Flask) -> None:
    """Registers this domain's blueprint, rate limiter, housekeeping and CLI group."""
    from core import rate_limits
    from holder import housekeeping
    from holder.cli import housekeeping_cli
    from holder.routes import holder_bp

    rate_limits.init_app(app)
    housekeeping.init_app(app)
    app.register_blueprint(holder_bp)
    app.cli.add_command(housekeeping_cli)
    if not app.config.get("PUBLIC_BASE_URL") and not (app.debug or app.testing):
        log.warning(
            "PUBLIC_BASE_URL is not set: credentials will name status lists under "
            "%s, which relying parties cannot reach; set it to this service's public URL",
            DEFAULT_PUBLIC_BASE_URL,
        )
