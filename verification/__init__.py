"""verification domain."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this domain's blueprints, CLI groups and readiness checks."""
