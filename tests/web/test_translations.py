"""Every message of the pages has a Japanese translation, and the compiled catalogue is
the one the .po file gives (``make translations`` after editing either)."""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).parents[2]
JA = ROOT / "web" / "translations" / "ja" / "LC_MESSAGES"
METHODS = [("web/**.py", "python"), ("web/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}


def _catalog():
    with open(JA / "messages.po", "rb") as po:
        return read_po(po)


def test_every_message_in_the_sources_is_translated():
    catalog = _catalog()
    found = {
        message
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), METHODS, keywords=KEYWORDS
        )
        if isinstance(message, str)
    }
    assert found, "no messages extracted"
    untranslated = sorted(m for m in found if not (catalog.get(m) and catalog.get(m).string))
    assert not untranslated


def test_compiled_catalogue_matches_the_po_file():
    compiled = io.BytesIO()
    write_mo(compiled, _catalog())
    with open(JA / "messages.mo", "rb") as mo:
        shipped = {m.id: m.string for m in read_mo(mo) if m.id}
    compiled.seek(0)
    assert shipped == {m.id: m.string for m in read_mo(compiled) if m.id}
