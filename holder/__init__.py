"""holder domain: what the licence holder does with the card: sign-in sessions, the
access log, credentials (SD-JWT VC), status lists and online presentations."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this domain's blueprint, rate limiter, housekeeping and CLI group."""
    from holder import housekeeping, rate_limits
    from holder.cli import housekeeping_cli
    from holder.routes import holder_bp

    rate_limits.init_app(app)
    housekeeping.init_app(app)
    app.register_blueprint(holder_bp)
    app.cli.add_command(housekeeping_cli)
