"""Owner-only files: the instance folder is 0700, database files 0600 (whatever the
umask), because they hold agency codes, keys and the audit trail."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


def make_private_folder(path: Path) -> None:
    """Creates the folder (and missing parents) 0700; an existing folder is tightened."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    if path.stat().st_mode & 0o077:
        path.chmod(PRIVATE_FOLDER)


def create_private_file(path: Path) -> None:
    """Creates an empty file 0600 if it does not exist yet; an existing one is tightened
    (SQLite gives its -wal and -shm files the mode of the database file)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(PRIVATE_FILE)
