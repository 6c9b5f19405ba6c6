"""Application factory; ``app`` serves ``flask --app app`` and gunicorn."""

from __future__ import annotations

from typing import Any

from apiflask import APIFlask

from core.config import settings_from_env


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
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config.update(
        VALIDATION_ERROR_STATUS_CODE=400,
        SPEC_FORMAT="json",
        INFO={
            "description": "Verifies doctor and nurse licences with My Number card "
            "assertions, without revealing any number."
        },
    )

    from core import db, domains, errors, logging, openapi, proxies

    proxies.init_app(app)
    logging.configure_logging(app)
    errors.register_error_handlers(app)
    db.init_app(app)
    domains.register(app)
    openapi.init_app(app)
    return app


def __getattr__(name: str) -> APIFlask:
    # Built on first use, so importing create_app (tests, tools) has no side effects.
    if name == "app":
        globals()["app"] = instance = create_app()
        return instance
    raise AttributeError(name)
