"""verification domain: challenges, the card-assertion pipeline, trust store and CRLs,
outcomes, receipts and access records."""

from __future__ import annotations

from flask import Flask

from core.health import add_readiness_check
from core.metrics import add_collector


def init_app(app: Flask) -> None:
    """Registers this domain's blueprints, CLI groups and readiness checks."""
    from verification.cli import challenges_cli, crl_cli
    from verification.metrics import crl_ages
    from verification.revocation import crl_readiness
    from verification.routes import bp

    app.register_blueprint(bp)
    app.cli.add_command(crl_cli)
    app.cli.add_command(challenges_cli)
    add_readiness_check(app, "card_revocation_lists", crl_readiness)
    add_collector(app, crl_ages)
