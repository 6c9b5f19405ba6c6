"""verification domain: challenges, the card-assertion pipeline, CRLs, receipts, access
records (and the holder features, registered from ``verification.holder`` if present)."""

from __future__ import annotations

import importlib
import importlib.util

from flask import Flask

from core.health import add_readiness_check

#: The holder-features module registers itself with its own ``init_app(app)``.
HOLDER_MODULE = "verification.holder"


def init_app(app: Flask) -> None:
    """Registers this domain's blueprints, CLI groups and readiness checks."""
    from verification.cli import crl_cli
    from verification.revocation import crl_readiness
    from verification.routes import bp

    app.register_blueprint(bp)
    app.cli.add_command(crl_cli)
    add_readiness_check(app, "card_revocation_lists", crl_readiness)
    if importlib.util.find_spec(HOLDER_MODULE) is not None:
        importlib.import_module(HOLDER_MODULE).init_app(app)
