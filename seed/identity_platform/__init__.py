"""The embedded identity platform (``IDENTITY_PLATFORM=embedded``), a stand-in.

Development and demo only: production uses the real identity platform behind
``identity.IdentityPlatform``. This one keeps its own store (``IDENTITY_DATABASE_URL``,
default ``instance/identity_platform.sqlite3``, migrated by its own Alembic
environment on first use) and its own master keys (``IDENTITY_MASTER_KEY`` or
``IDENTITY_MASTER_KEY_FILE``; see ``keys``).

Commands: ``flask --app app identity-platform rotate-keys | rekey-codes | status | new-key``.
See README.md in this folder.
"""

from __future__ import annotations

import logging

from flask import Flask

from core.health import add_readiness_check
from seed.identity_platform.keys import ENV_VAR, MasterKeySource
from seed.identity_platform.platform import EmbeddedIdentityPlatform
from seed.identity_platform.store import alembic_config

__all__ = ["EmbeddedIdentityPlatform", "alembic_config", "create_platform", "init_app"]


def create_platform(config) -> EmbeddedIdentityPlatform:
    """Builds the platform from the app config; nothing touches disk until first use."""
    env_keys = config.get(ENV_VAR)
    source = MasterKeySource(config["IDENTITY_MASTER_KEY_FILE"], env_keys)
    return EmbeddedIdentityPlatform(config["IDENTITY_DATABASE_URL"], source)


log = logging.getLogger("licence_service.identity_platform")


def init_app(app: Flask) -> None:
    from identity import EXTENSION_KEY
    from seed.identity_platform.cli import identity_platform_cli

    log.warning(
        "IDENTITY_PLATFORM=embedded: the identity platform is a development stand-in "
        "(its own store and keys), not for production; set IDENTITY_PLATFORM to the real "
        "platform's adapter"
    )
    platform = create_platform(app.config)
    app.extensions[EXTENSION_KEY] = platform
    app.cli.add_command(identity_platform_cli)
    add_readiness_check(app, "identity_platform", _readiness(platform))


def _readiness(platform: EmbeddedIdentityPlatform):
    def check() -> str | None:
        try:
            return platform.ping()
        except Exception:  # noqa: BLE001 - any failure means not ready
            return "identity platform unavailable"

    return check
