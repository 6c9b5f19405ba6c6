"""Configuration from environment variables (see the contract's table)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_AUDIENCE = "urn:licence-verification:local"
#: Status list URIs use this base while PUBLIC_BASE_URL is unset (start-up warns outside
#: development: relying parties elsewhere cannot reach it).
PUBLIC_BASE_URL_FALLBACK = "http://127.0.0.1:8000"

# Optional settings: taken from the environment when set there, else each consumer's
# documented default applies (None here).
OPTIONAL_SETTINGS = (
    "PUBLIC_BASE_URL",  # absolute base of status list URIs (never the request's Host)
    "RATE_LIMIT_STORAGE_URI",  # limits storage: memory:// (per process), redis://host:port
    "TRUSTED_PROXIES",  # reverse proxies in front whose X-Forwarded-For is trusted (0)
    "SIGNING_RETIRED_KEYS_DIR",  # public parts of rotated signing keys
    "SIGNING_KEY_RETENTION",  # seconds a retired key stays in the JWKS
    "IDENTITY_MASTER_KEY",  # embedded platform master keys ("1:<b64url>,2:<b64url>")
)

# Holder, presentation and housekeeping settings with their defaults (an environment
# value, always a string, wins; consumers convert it).
HOLDER_DEFAULTS: dict[str, Any] = {
    "STATUS_LIST_TTL": 60,  # seconds a status list is cached, here and by relying parties
    "HOLDER_CREDENTIAL_LIFETIME": 24 * 3600,  # seconds, at most 24 hours
    "HOLDER_MAX_LIVE_CREDENTIALS": 5,  # unexpired credentials per holder and profession
    # Per client address (an IPv6 /64 counts as one), "N per minute|hour|..." (limits).
    "HOLDER_RATE_LIMIT_CHALLENGES": "30 per minute",
    "HOLDER_RATE_LIMIT_SESSIONS": "10 per minute",
    "HOLDER_RATE_LIMIT_AUTHENTICATED": "120 per minute",
    "HOLDER_RATE_LIMIT_STATUS_LISTS": "600 per minute",
    # Unexpired, unused challenges per API client, and holder challenges per address.
    "CHALLENGE_MAX_OUTSTANDING": 1000,
    "ACCESS_LOG_RETENTION": 5 * 365 + 2,  # days access records are kept (5 years, leap days)
    "HOUSEKEEPING_INTERVAL": 600,  # seconds between automatic prunes, per process
}


def settings_from_env(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask config mapping; explicit overrides win over the environment."""
    overrides = dict(overrides or {})
    env = {**os.environ, **{k: v for k, v in overrides.items() if isinstance(v, str)}}
    instance_path = Path(env.get("INSTANCE_PATH") or "instance").resolve()
    card_authority_dir = Path(env.get("CARD_AUTHORITY_DIR") or instance_path / "card_authority")
    settings: dict[str, Any] = {
        "INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": env.get("DATABASE_URL")
        or f"sqlite:///{instance_path / 'licensing.sqlite3'}",
        "SERVICE_AUDIENCE": env.get("SERVICE_AUDIENCE") or DEFAULT_AUDIENCE,
        # The demo card authority writes its bundle here on `card-authority init`.
        "CARD_TRUST_ANCHORS": env.get("CARD_TRUST_ANCHORS")
        or str(card_authority_dir / "trust-anchors.pem"),
        "IDENTITY_PLATFORM": env.get("IDENTITY_PLATFORM") or "embedded",
        "IDENTITY_DATABASE_URL": env.get("IDENTITY_DATABASE_URL")
        or f"sqlite:///{instance_path / 'identity_platform.sqlite3'}",
        "IDENTITY_MASTER_KEY_FILE": env.get("IDENTITY_MASTER_KEY_FILE")
        or str(instance_path / "identity_platform" / "master-keys.json"),
        "SIGNING_KEY_FILE": env.get("SIGNING_KEY_FILE") or str(instance_path / "signing-key.pem"),
        "CARD_AUTHORITY_DIR": str(card_authority_dir),
        # Flask rejects larger bodies with 413 before any parsing happens.
        "MAX_CONTENT_LENGTH": 64 * 1024,
    }
    settings.update({key: env.get(key) or None for key in OPTIONAL_SETTINGS})
    settings.update({key: env.get(key) or value for key, value in HOLDER_DEFAULTS.items()})
    settings.update(overrides)
    return settings
