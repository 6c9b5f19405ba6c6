"""What the card app says, in Japanese or English (chosen from ``LC_ALL``, ``LC_MESSAGES``
or ``LANG``, as other programs do; English unless the locale is Japanese)."""

from __future__ import annotations

import os
from collections.abc import Mapping

PROFESSIONS = {
    "ja": {
        "doctor": "医師",
        "dentist": "歯科医師",
        "pharmacist": "薬剤師",
        "nurse": "看護師",
        "midwife": "助産師",
        "public_health_nurse": "保健師",
    },
    "en": {
        "doctor": "doctor",
        "dentist": "dentist",
        "pharmacist": "pharmacist",
        "nurse": "nurse",
        "midwife": "midwife",
        "public_health_nurse": "public health nurse",
    },
}

CONSENTS = {
    "ja": {
        "monitoring": (
            "今後、免許の状態（停止・取消など）が変わったときに、この確認者へ通知すること"
        ),
    },
    "en": {
        "monitoring": "this verifier being told from now on when your licence status changes "
        "(suspension, revocation, ...)",
    },
}

TEXTS: Mapping[str, Mapping[str, str]] = {
    "ja": {
        "asks": "{verifier} があなたの{profession}免許の確認を求めています。",
        "asks_sign_in": "{verifier}: カードでサインインします。",
        "expires": "この依頼の有効期限: {time}",
        "consent_asked": "あわせて次への同意を求めています: {consent}",
        "agree": "「{consent}」に同意しますか？",
        "proceed": "カードで署名して回答しますか？",
        "declined": "署名しませんでした。何も送信していません。",
        "pin": "カードの暗証番号（利用者証明用）: ",
        "sent": "送信しました。結果: {outcome}（{verifier}）",
        "refused": "拒否されました: {code}（{detail}）",
        "request_refused": "この依頼には署名しません: {reason}",
        "error": "エラー: {message}",
        "credential_saved": "資格情報（{profession}）を保存しました: {path}",
    },
    "en": {
        "asks": "{verifier} asks to verify your {profession} licence.",
        "asks_sign_in": "{verifier}: sign in with your card.",
        "expires": "This request expires at {time}.",
        "consent_asked": "They also ask for your consent to: {consent}",
        "agree": "Do you agree to {consent}?",
        "proceed": "Sign with your card and answer?",
        "declined": "Not signed. Nothing was sent.",
        "pin": "Card PIN (user authentication): ",
        "sent": "Sent. Result: {outcome} ({verifier})",
        "refused": "Refused: {code} ({detail})",
        "request_refused": "This request will not be signed: {reason}",
        "error": "Error: {message}",
        "credential_saved": "Credential ({profession}) saved to {path}",
    },
}


#: Card errors in Japanese, by class name (English: the error's own message).
CARD_ERRORS_JA = {
    "WrongPin": "暗証番号が違います。あと{remaining_attempts}回間違えるとカードがロックされます。",
    "CardLocked": (
        "暗証番号を続けて間違えたため、カードはロックされていて署名できません。"
        "市区町村の窓口で解除してください（デモではカードを再発行）。"
    ),
    "InvalidPinFormat": "暗証番号は4桁の数字です（カードの誤り回数には数えていません）。",
    "TokenPinIncorrect": "暗証番号が違います。",
    "TokenPinLocked": (
        "暗証番号を何度も間違えたため、カードはロックされていて署名できません。"
        "発行元（マイナンバーカードは市区町村の窓口）で解除してください。"
    ),
    "ServiceUnreachable": "サービスに接続できません: {url}",
}
TRIES_LEFT_JA = {
    "final": "あと1回間違えるとロックされます。",
    "low": "ロックまでの残り回数がわずかです。",
}


def language(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(name)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


class Messages:
    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in TEXTS else "en"

    def __call__(self, key: str, **values: str) -> str:
        return TEXTS[self.lang][key].format(**values)

    def profession(self, code: str) -> str:
        return PROFESSIONS[self.lang].get(code, code)

    def consent(self, code: str) -> str:
        return CONSENTS[self.lang].get(code, code)

    def problem(self, error: Exception) -> str:
        """A card or service error in the holder's language."""
        text = CARD_ERRORS_JA.get(type(error).__name__) if self.lang == "ja" else None
        if text is None:
            return str(error)
        warning = TRIES_LEFT_JA.get(getattr(error, "tries_left", None) or "", "")
        return text.format(**vars(error)) + warning
