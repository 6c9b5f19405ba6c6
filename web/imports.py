"""The regulator's CSV import runs in a background thread so the page can show its
progress. Each import's state is a small JSON file in the instance folder (any worker
process can answer the page's poll); the file itself stays in memory only, as My Numbers
must never reach the disk. States: running (phase checking, then writing), done, failed."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_babel import lazy_gettext as _l

from core.db import get_session
from core.errors import NotFound, ServiceError
from licensing.importer import ImportResult, import_csv

#: Rows per transaction: small, so that the bar moves and verifications interleave.
BATCH_ROWS = 500
#: Finished imports' states are kept this long for the page to show them.
KEEP_SECONDS = 24 * 3600
_JOB_ID = re.compile(r"[0-9a-f]{32}")
logger = logging.getLogger(__name__)


def _folder() -> Path:
    return Path(current_app.instance_path) / "imports"


def _save(path: Path, state: dict[str, Any]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    os.replace(temporary, path)  # a poll never reads half a file


def _state(actor: str, status: str, result: ImportResult) -> dict[str, Any]:
    return {
        "actor": actor,
        "state": status,
        "phase": result.phase,
        "rows": result.rows,
        "imported": result.imported,
        "unchanged": result.unchanged,
        "invalid": result.invalid,
        "to_write": result.to_write,
        "committed": result.committed,
        "errors": [{"line": e.line, "problems": list(e.problems)} for e in result.first_errors],
    }


def _forget_old(folder: Path) -> None:
    cutoff = time.time() - KEEP_SECONDS
    for old in folder.glob("*.json"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def start(data: bytes, *, actor: str, skip_invalid: bool) -> str:
    """Starts importing ``data`` in a thread; returns the import's id."""
    folder = _folder()
    folder.mkdir(parents=True, exist_ok=True)
    _forget_old(folder)
    job_id = secrets.token_hex(16)
    path = folder / f"{job_id}.json"
    _save(path, _state(actor, "running", ImportResult()))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    threading.Thread(target=_run, args=(app, path, data, actor, skip_invalid), daemon=True).start()
    return job_id


def _run(app: Flask, path: Path, data: bytes, actor: str, skip_invalid: bool) -> None:
    with app.app_context():
        try:
            result = import_csv(
                get_session(),
                io.BytesIO(data),
                actor=actor,
                skip_invalid=skip_invalid,
                batch_size=BATCH_ROWS,
                on_progress=lambda progress: _save(path, _state(actor, "running", progress)),
            )
        except ServiceError as error:
            _save(path, {"actor": actor, "state": "failed", "error": str(error.detail)})
            return
        except Exception:
            logger.exception("import failed")
            detail = _l(
                "The import stopped unexpectedly: run it again "
                "(rows already imported are reported as unchanged)."
            )
            _save(path, {"actor": actor, "state": "failed", "error": str(detail)})
            return
        _save(path, _state(actor, "done", result))


def load(job_id: str, actor: str) -> dict[str, Any]:
    """The import's state; only the staff member who started it may see it."""
    path = _folder() / f"{job_id}.json" if _JOB_ID.fullmatch(job_id) else None
    try:
        state = json.loads(path.read_text(encoding="utf-8")) if path else None
    except FileNotFoundError:
        state = None
    if state is None or state.get("actor") != actor:
        raise NotFound(_l("No import of yours has this id: start it again on the import page."))
    return state
