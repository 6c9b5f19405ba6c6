"""web domain: the pages for HR staff (/hr), licence holders (/me) and regulator staff
(/regulator), server-rendered, Japanese by default and English."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, request
from flask_babel import Babel

LANGUAGES = ("ja", "en")
LANGUAGE_COOKIE = "lv_lang"


def select_locale() -> str:
    """The switch's choice (a cookie), else the browser's preference, else Japanese."""
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def init_app(app: Flask) -> None:
    """Registers the pages, the card app's endpoints of the holder sign-in, translations
    and the ``staff`` CLI group."""
    from web.cli import staff_cli
    from web.hr import hr_bp
    from web.me import card_bp, me_bp
    from web.pages import assets_bp, pages_bp
    from web.regulator import regulator_bp

    app.config.setdefault("BABEL_DEFAULT_LOCALE", LANGUAGES[0])
    # Licence dates are Japanese calendar dates; the pages show times in Japan too.
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Asia/Tokyo")
    app.config.setdefault(
        "BABEL_TRANSLATION_DIRECTORIES", str(Path(__file__).parent / "translations")
    )
    Babel(app, locale_selector=select_locale)
    for blueprint in (assets_bp, pages_bp, hr_bp, me_bp, card_bp, regulator_bp):
        app.register_blueprint(blueprint)
    app.cli.add_command(staff_cli)
