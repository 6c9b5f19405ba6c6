"""Absolute URLs the pages hand out (QR codes, set-up links): from PUBLIC_BASE_URL,
never from the request's Host header."""

from __future__ import annotations

from flask import current_app

from core.config import public_base_url


def absolute_url(path: str) -> str:
    return public_base_url(current_app.config) + path
