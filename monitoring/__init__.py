"""monitoring domain: consented monitoring of licences by verifiers, the transactional
event outbox, Security Event Token delivery (push worker and polling) and rosters."""

from __future__ import annotations

import os

from flask import Flask

from core.metrics import add_collector

#: Settings read from the environment unless the app's config sets them (see
#: ``monitoring.webhooks`` and ``monitoring.worker``).
SETTINGS = (
    "ALLOW_INSECURE_WEBHOOKS",
    "MONITORING_ALLOWED_NETWORKS",
    "MONITORING_BATCH_SIZE",
    "MONITORING_RETRY_BASE_SECONDS",
    "MONITORING_RETRY_MAX_SECONDS",
    "MONITORING_RETRY_FOR_SECONDS",
    "MONITORING_IDLE_SECONDS",
    "MONITORING_LAPSE_CHECK_SECONDS",
)


def init_app(app: Flask) -> None:
    """Registers the outbox listener, the blueprints and the CLI group."""
    from monitoring import outbox, webhooks, worker
    from monitoring.cli import monitoring_cli
    from monitoring.metrics import outbox as outbox_metrics
    from monitoring.routes import holder_monitoring_bp, monitoring_bp
    from monitoring.service import on_verified
    from verification import listeners

    for key in SETTINGS:
        app.config.setdefault(key, os.environ.get(key))
    # Malformed settings fail at start-up, not in the middle of a delivery.
    webhooks.allowed_networks(app.config)
    worker.WorkerSettings.from_config(app.config)
    outbox.install()
    listeners.on_verified(on_verified)
    app.register_blueprint(monitoring_bp)
    app.register_blueprint(holder_monitoring_bp)
    app.cli.add_command(monitoring_cli)
    add_collector(app, outbox_metrics)
