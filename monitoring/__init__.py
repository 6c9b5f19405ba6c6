"""monitoring domain: consented monitoring of licences by verifiers, the transactional
event outbox, Security Event Token delivery (push worker and polling) and rosters."""

from __future__ import annotations

from flask import Flask

from core.config import ConfigurationError
from core.metrics import add_collector


def init_app(app: Flask) -> None:
    """Registers the outbox listener, the blueprints and the CLI group."""
    from monitoring import outbox, webhooks
    from monitoring.cli import monitoring_cli
    from monitoring.metrics import outbox as outbox_metrics
    from monitoring.routes import holder_monitoring_bp, monitoring_bp
    from monitoring.service import on_verified
    from verification import listeners

    # Malformed settings fail at start-up, not in the middle of a delivery.
    try:
        webhooks.allowed_networks(app.config)
    except ValueError as error:
        raise ConfigurationError(f"MONITORING_ALLOWED_NETWORKS: {error}") from None
    outbox.install()
    listeners.on_verified(on_verified)
    app.register_blueprint(monitoring_bp)
    app.register_blueprint(holder_monitoring_bp)
    app.cli.add_command(monitoring_cli)
    add_collector(app, outbox_metrics)
