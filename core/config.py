"""Configuration from environment variables: every setting, its default and its check.

This is the one place that knows the defaults (the contract's "Configuration" table;
README lists them). A value the service cannot use is a ``ConfigurationError`` whose
message is one line naming the variable and what to do, raised when the app is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from limits import parse as parse_rate_limit

from core import db
from core.permissions import make_private_folder

DEFAULT_AUDIENCE = "urn:licence-verification:local"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
KEYS_FILE = "master-keys.json"  # the embedded identity platform's, if not in the environment
_DIGITS = re.compile(r"[0-9]{1,12}")


class ConfigurationError(Exception):
    """A setting has a value the service cannot use. The message is one line."""


def _integer(minimum: int, maximum: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        text = str(value)
        # ASCII digits only: no signs, spaces, underscores or other scripts' digits.
        if not _DIGITS.fullmatch(text) or not minimum <= int(text) <= maximum:
            raise ConfigurationError(f"{name} must be an integer from {minimum} to {maximum}")
        return int(text)

    return check


def _rate_limit(name: str, value: Any) -> str:
    try:
        parse_rate_limit(str(value))
    except ValueError:
        raise ConfigurationError(f"{name} must be a rate such as '30 per minute'") from None
    return str(value)


def _text(_name: str, value: Any) -> str:
    return str(value)


DAY = 24 * 3600
#: Settings with a fixed default: name -> (default, check). Settings whose default
#: depends on the instance folder are derived in ``settings_from_env``.
DEFAULTS: dict[str, tuple[Any, Callable[[str, Any], Any]]] = {
    "SERVICE_AUDIENCE": (DEFAULT_AUDIENCE, _text),
    "IDENTITY_PLATFORM": ("embedded", _text),
    # Flask rejects larger bodies with 413 before any parsing happens.
    "MAX_CONTENT_LENGTH": (64 * 1024, _integer(1024, 1024 * 1024)),
    "STATUS_LIST_TTL": (60, _integer(1, DAY)),  # seconds relying parties may cache a list
    "HOLDER_CREDENTIAL_LIFETIME": (DAY, _integer(60, DAY)),  # seconds, at most 24 hours
    # Unexpired credentials per holder and profession.
    "HOLDER_MAX_LIVE_CREDENTIALS": (5, _integer(1, 1000)),
    # Per client address (an IPv6 /64 counts as one).
    "HOLDER_RATE_LIMIT_CHALLENGES": ("30 per minute", _rate_limit),
    "HOLDER_RATE_LIMIT_SESSIONS": ("10 per minute", _rate_limit),
    "HOLDER_RATE_LIMIT_AUTHENTICATED": ("120 per minute", _rate_limit),
    "HOLDER_RATE_LIMIT_STATUS_LISTS": ("600 per minute", _rate_limit),
    "CARD_RATE_LIMIT_REQUESTS": ("60 per minute", _rate_limit),  # GET /r/{id}
    "CARD_RATE_LIMIT_RESPONSES": ("10 per minute", _rate_limit),  # the card app's answers
    # Unexpired, unused challenges per API client, and holder challenges per address.
    "CHALLENGE_MAX_OUTSTANDING": (1000, _integer(1, 1_000_000)),
    "ACCESS_LOG_RETENTION": (5 * 365 + 2, _integer(1, 36500)),  # days (5 years, leap days)
    "HOUSEKEEPING_INTERVAL": (600, _integer(0, DAY)),  # seconds between prunes, per process
    # memory:// counts per process; redis://host:port/db is shared by every worker.
    "RATE_LIMIT_STORAGE_URI": ("memory://", _text),
    # Monitoring delivery (monitoring.worker): events a worker claims at once; push
    # retries' first back-off, cap and how long to keep trying; the worker's pause when
    # idle; how often it looks for suspensions that ended by themselves (seconds).
    "MONITORING_BATCH_SIZE": (50, _integer(1, 10_000)),
    "MONITORING_RETRY_BASE_SECONDS": (10, _integer(0, 10 * DAY)),
    "MONITORING_RETRY_MAX_SECONDS": (3600, _integer(0, 10 * DAY)),
    "MONITORING_RETRY_FOR_SECONDS": (DAY, _integer(0, 10 * DAY)),
    "MONITORING_IDLE_SECONDS": (1, _integer(0, DAY)),
    "MONITORING_LAPSE_CHECK_SECONDS": (60, _integer(1, DAY)),
    # Reverse proxies in front whose X-Forwarded-For entries are believed.
    "TRUSTED_PROXIES": (0, _integer(0, 10)),
    # Seconds a retired signing key stays in the JWKS: the longest token lifetime (a
    # 24-hour credential) plus an hour for clocks and caches.
    "SIGNING_KEY_RETENTION": (DAY + 3600, _integer(0, 400 * DAY)),
}
#: Settings with no default: unset means the feature's documented behaviour.
UNSET_BY_DEFAULT = (
    "PUBLIC_BASE_URL",  # absolute base of status list URIs (never the request's Host)
    "IDENTITY_MASTER_KEY",  # embedded platform master keys ("1:<b64url>,2:<b64url>")
    "METRICS_TOKEN",  # bearer token for /metrics from other than loopback clients
    "ALLOW_INSECURE_WEBHOOKS",  # "1": http:// monitoring webhooks on loopback addresses
    "MONITORING_ALLOWED_NETWORKS",  # networks webhooks may resolve into besides public ones
)
DATABASE_URL_SETTINGS = ("DATABASE_URL", "IDENTITY_DATABASE_URL")


def settings_from_env(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping; explicit overrides win over the environment.

    Creates the instance folder (mode 0700) when it is missing; raises
    ``ConfigurationError`` for the first unusable value.
    """
    overrides = dict(overrides or {})
    env = {**os.environ, **{k: v for k, v in overrides.items() if isinstance(v, str)}}

    def value(name: str, default: Any) -> Any:
        given = overrides.get(name, env.get(name))
        return default if given is None or given == "" else given

    instance_path = Path(value("INSTANCE_PATH", "instance")).resolve()
    card_authority_dir = Path(value("CARD_AUTHORITY_DIR", instance_path / "card_authority"))
    signing_key_file = Path(value("SIGNING_KEY_FILE", instance_path / "signing-key.pem"))
    settings: dict[str, Any] = {
        "INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": value("DATABASE_URL", f"sqlite:///{instance_path / 'licensing.sqlite3'}"),
        # The demo card authority writes its bundle here on `card-authority init`.
        "CARD_TRUST_ANCHORS": str(
            value("CARD_TRUST_ANCHORS", card_authority_dir / "trust-anchors.pem")
        ),
        "IDENTITY_DATABASE_URL": value(
            "IDENTITY_DATABASE_URL", f"sqlite:///{instance_path / 'identity_platform.sqlite3'}"
        ),
        "IDENTITY_MASTER_KEY_FILE": str(
            value("IDENTITY_MASTER_KEY_FILE", instance_path / "identity_platform" / KEYS_FILE)
        ),
        "SIGNING_KEY_FILE": str(signing_key_file),
        "SIGNING_RETIRED_KEYS_DIR": str(
            value("SIGNING_RETIRED_KEYS_DIR", signing_key_file.parent / "retired-signing-keys")
        ),
        # Signs audit checkpoints; keep it (and the checkpoints) away from the database.
        "AUDIT_CHECKPOINT_KEY_FILE": str(
            value("AUDIT_CHECKPOINT_KEY_FILE", instance_path / "audit-checkpoint-key.pem")
        ),
        "CARD_AUTHORITY_DIR": str(card_authority_dir),
    }
    for name, (default, check) in DEFAULTS.items():
        settings[name] = check(name, value(name, default))
    settings.update({name: value(name, None) for name in UNSET_BY_DEFAULT})
    settings.update({k: v for k, v in overrides.items() if k not in settings})
    try:
        make_private_folder(instance_path)
    except OSError as error:
        raise ConfigurationError(
            f"INSTANCE_PATH: cannot create {instance_path} ({error.strerror})"
        ) from None
    for name in DATABASE_URL_SETTINGS:
        try:
            db.check_url(settings[name])
        except db.DatabaseUrlError as error:
            raise ConfigurationError(f"{name}: {error}") from None
    return settings


def check_databases_reachable(settings: dict[str, Any]) -> None:
    """Connects once to each database (at start-up: a wrong host is one clear line)."""
    for name in DATABASE_URL_SETTINGS:
        try:
            db.check_reachable(settings[name])
        except db.DatabaseUrlError as error:
            raise ConfigurationError(f"{name}: {error}") from None


def public_base_url(config: Any) -> str:
    """Where clients reach this service (URLs it hands out are absolute): the
    ``PUBLIC_BASE_URL`` setting, never taken from a request's Host."""
    return (config.get("PUBLIC_BASE_URL") or DEFAULT_PUBLIC_BASE_URL).rstrip("/")
