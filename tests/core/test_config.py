"""Configuration mistakes are one line naming the variable (core.config), and the flask
CLI and gunicorn stop on them with a non-zero status and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from core.config import ConfigurationError, settings_from_env
from tests.core.test_gunicorn import UNREACHABLE_POSTGRES

ROOT = Path(__file__).resolve().parents[2]


def _flask(env: dict[str, str], *args: str):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DATABASE_URL", "not a url", "not a database URL"),
        ("DATABASE_URL", "mysql+nodriver://u@h/d", "unknown database driver"),
        ("DATABASE_URL", "postgresql+asyncpg://u@h/d", "is not installed"),
        ("DATABASE_URL", "sqlite:////no/such/folder/x.sqlite3", "does not exist"),
        ("IDENTITY_DATABASE_URL", "oracle+nothing://x", "unknown database driver"),
        ("TRUSTED_PROXIES", "-1", "integer from 0 to 10"),
        ("STATUS_LIST_TTL", "１０", "integer from 1"),
        ("HOLDER_RATE_LIMIT_SESSIONS", "lots", "rate such as"),
        ("MAX_CONTENT_LENGTH", "99999999999", "integer from"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(tmp_path, name, value, says):
    with pytest.raises(ConfigurationError) as caught:
        settings_from_env({"INSTANCE_PATH": str(tmp_path), name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}") and says in message
    assert "\n" not in message
    assert "nobody" not in message and "u@h" not in message  # never the URL itself


def test_an_sqlite_folder_is_never_created_silently(tmp_path):
    missing = tmp_path / "typo" / "licensing.sqlite3"
    with pytest.raises(ConfigurationError, match="^DATABASE_URL: the folder"):
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{missing}"})
    assert not missing.parent.exists()


def test_the_instance_folder_is_created_private(tmp_path):
    instance = tmp_path / "fresh" / "instance"
    settings_from_env({"INSTANCE_PATH": str(instance)})
    assert instance.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("DATABASE_URL", "::nonsense::", "not a database URL"),
        ("DATABASE_URL", "postgresql+pg8000://u@h/d", "is not installed"),
        ("DATABASE_URL", UNREACHABLE_POSTGRES, "cannot connect"),
        ("IDENTITY_DATABASE_URL", UNREACHABLE_POSTGRES, "cannot connect"),
        ("IDENTITY_DATABASE_URL", "sqlite:////no/such/folder/i.sqlite3", "does not exist"),
    ],
)
def test_the_cli_stops_with_one_line(tmp_path, name, value, says):
    result = _flask({"INSTANCE_PATH": str(tmp_path), name: value}, "db", "upgrade")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {name}: ") and says in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
