"""find_licences by a part of the name (kanji or kana), for the regulator's search page."""

from __future__ import annotations

from core import db
from licensing.service import find_licences


def test_name_search_matches_a_part_and_escapes_wildcards(app, register_licence):
    kanji = register_licence(name="山田 太郎")
    kana = register_licence(name="やまだ はなこ")
    register_licence(name="佐藤 次郎")
    with app.app_context():
        session = db.get_session()

        def ids(part: str) -> set[str]:
            return {lic.id for lic in find_licences(session, name=part).licences}

        assert ids("山田") == {kanji.id}
        assert ids("やまだ") == {kana.id}
        assert ids("やまた\u3099") == {kana.id}  # decomposed だ: NFC-normalised first
        assert ids("%") == set()  # a wildcard is a character, not "anything"
        assert ids("_") == set()
