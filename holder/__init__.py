"""holder domain: what the licence holder does with the card: sign-in sessions, the
access log, credentials (SD-JWT VC), status lists and online presentations."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this domain's blueprint, rate limiter and CLI group."""
    from core import rate_limits
    from holder.cli import holder_cli
    from holder.routes import holder_bp

    rate_limits.init_app(app)
    app.register_blueprint(holder_bp)
    app.cli.add_command(holder_cli)
