"""Licensing domain: professions, the licence register and its lifecycle, the regulator
API, the audit hash chain, and bulk CSV import."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this domain's blueprints, CLI groups and readiness checks."""
    from clients.cli import PROFESSIONS_EXTENSION
    from core.audit import register_recorder
    from licensing import audit
    from licensing.cli import audit_cli, licences_cli
    from licensing.professions import PROFESSION_CODES
    from licensing.routes import bp

    register_recorder(app, audit.record)
    app.extensions[PROFESSIONS_EXTENSION] = PROFESSION_CODES
    app.register_blueprint(bp)
    app.cli.add_command(licences_cli)
    app.cli.add_command(audit_cli)
