"""The composition root: names the domains and the identity-platform adapter and wires
them. ``app`` serves ``flask --app app`` and gunicorn.

Dependencies point one way: core <- identity <- clients <- licensing <- verification <-
holder; ``seed`` (the stand-ins for the outside world) is wired here and nowhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from apiflask import APIFlask
from flask import Flask

import clients
import holder
import identity
import licensing
import seed
import verification
from core import db, errors, health, logging, metrics, openapi, proxies, signing, strict_json
from core.config import ConfigurationError, check_databases_reachable, settings_from_env
from identity.errors import IdentityPlatformConfigurationError

#: Each domain's ``init_app(app)`` registers its blueprints, CLI groups and readiness
#: checks, in this order (a domain may use the ones before it).
DOMAINS = (clients, licensing, verification, holder)
#: Stand-ins for the outside world: the demo card authority, virtual cards, demo data.
STAND_INS = (seed,)

#: Every module that declares tables on ``core.db.Base``: the migration environment,
#: ``make check`` and the tests import them through ``import_models``.
MODEL_MODULES = (
    "clients.models",
    "licensing.models",
    "verification.models",
    "holder.models",
)

#: Short names for ``IDENTITY_PLATFORM``; any other value is a dotted path
#: ``package.module:attribute`` to a callable that installs an ``IdentityPlatform``.
IDENTITY_PLATFORM_ALIASES = {"embedded": "seed.identity_platform:init_app"}


def import_models() -> None:
    """Register every domain's tables on ``core.db.Base.metadata``."""
    for module in MODEL_MODULES:
        importlib.import_module(module)


def identity_platform_adapter(name: str) -> Callable[[Flask], None]:
    path = IDENTITY_PLATFORM_ALIASES.get(name, name)
    try:
        adapter = pkgutil.resolve_name(path)
    except (ValueError, ImportError, AttributeError):
        raise IdentityPlatformConfigurationError(
            f"IDENTITY_PLATFORM={name!r} names no adapter; use 'embedded' or a dotted "
            "path 'package.module:install' to a callable that installs the platform"
        ) from None
    if not callable(adapter):
        raise IdentityPlatformConfigurationError(f"IDENTITY_PLATFORM={name!r} is not callable")
    return adapter


def create_app(config: dict[str, Any] | None = None) -> APIFlask:
    settings = settings_from_env(config)
    app = APIFlask(
        __name__,
        title="Licence verification service",
        version="1.0.0",
        instance_path=settings["INSTANCE_PATH"],
        docs_path="/docs",
    )
    app.config.update(settings)
    strict_json.init_app(app)
    proxies.init_app(app)
    logging.configure_logging(app)
    errors.register_error_handlers(app)
    db.init_app(app)
    metrics.init_app(app)
    health.init_app(app)
    signing.init_app(app)
    import_models()
    identity.init_app(app, identity_platform_adapter(settings["IDENTITY_PLATFORM"]))
    for package in DOMAINS + STAND_INS:
        package.init_app(app)
    openapi.init_app(app)
    return app


def _serving_app() -> APIFlask:
    try:
        check_databases_reachable(settings_from_env())
        return create_app()
    except ConfigurationError as error:
        # One line and a non-zero exit status (flask CLI, gunicorn), never a traceback.
        raise SystemExit(f"configuration error: {error}") from None


def __getattr__(name: str) -> APIFlask:
    # Built on first use, so importing create_app (tests, tools) has no side effects.
    if name == "app":
        globals()["app"] = instance = _serving_app()
        return instance
    raise AttributeError(name)
