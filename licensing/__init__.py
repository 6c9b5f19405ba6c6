"""Licensing domain: professions, the licence register and its lifecycle, the regulator
API, the audit hash chain, and bulk CSV import."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Registers this domain's blueprints, CLI groups and readiness checks."""
    from licensing.cli import audit_cli, licences_cli
    from licensing.routes import bp

    app.register_blueprint(bp)
    app.cli.add_command(licences_cli)
    app.cli.add_command(audit_cli)
