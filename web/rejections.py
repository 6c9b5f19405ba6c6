"""Every answer an HR check can end with, in plain words: what happened, what to do."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l


@dataclass(frozen=True)
class Explanation:
    title: LazyString
    happened: LazyString
    to_do: LazyString


EXPLANATIONS: dict[str, Explanation] = {
    "not_licensed": Explanation(
        _l("No licence for this profession"),
        _l(
            "The card is genuine, but the register holds no licence of this profession for "
            "its holder."
        ),
        _l(
            "Do not rely on a licence. Ask the candidate which profession they are licensed "
            "for, and check again for that profession if needed."
        ),
    ),
    "suspended": Explanation(
        _l("Licence suspended"),
        _l("The holder is licensed, but the licence is suspended until the date shown."),
        _l("The person may not practise until the suspension ends."),
    ),
    "revoked": Explanation(
        _l("Licence revoked"),
        _l("The licence has been revoked by the regulator."),
        _l("The person may not practise this profession."),
    ),
    "invalid_assertion": Explanation(
        _l("The card's answer was not valid"),
        _l(
            "The answer was not signed correctly, was for another service or verifier, or "
            "arrived too late."
        ),
        _l("Start a new check and ask the candidate to scan the new code."),
    ),
    "untrusted_certificate": Explanation(
        _l("Card not recognised"),
        _l("The card's certificate does not come from a trusted card authority."),
        _l("Ask for the candidate's own My Number card; an unknown card proves nothing."),
    ),
    "invalid_nonce": Explanation(
        _l("Request already used or expired"),
        _l(
            "The request was answered already, expired (after 5 minutes), or belongs to "
            "another organisation."
        ),
        _l("Start a new check."),
    ),
    "card_suspended": Explanation(
        _l("Card reported lost"),
        _l("The card is on hold: its owner reported it lost."),
        _l("Do not accept it. The owner can resume the card with the card authority."),
    ),
    "card_revoked": Explanation(
        _l("Card revoked"),
        _l("The card has been revoked and can no longer prove anything."),
        _l("Do not accept it. Its owner needs a new card."),
    ),
    "revocation_unavailable": Explanation(
        _l("Card status unavailable"),
        _l(
            "The service could not confirm that the card is not revoked (no current list "
            "from the card authority)."
        ),
        _l("Nothing is wrong with the candidate. Try again in a few minutes."),
    ),
    "unknown_holder": Explanation(
        _l("Card not registered"),
        _l("The card is genuine but its holder is not known to the identity platform."),
        _l("The holder should contact the licensing office."),
    ),
    "payload_too_large": Explanation(
        _l("Answer too large"),
        _l("The card app sent more data than a card answer can hold."),
        _l("Update the card app and start a new check."),
    ),
    "invalid_request": Explanation(
        _l("Malformed answer"),
        _l("The card app sent something that is not a card answer."),
        _l("Update the card app and start a new check."),
    ),
    "expired": Explanation(
        _l("Not answered in time"),
        _l("Nobody answered the request within 5 minutes."),
        _l("Start a new check when the candidate is ready with their card."),
    ),
}
