"""The facts a rule sees for one event: JSON-native, built from the event and the account."""
from __future__ import annotations

from app.accounts import account_facts
from app.models import Account


def health_change_facts(*, to: str, previous: str | None, crm_from: str | None, account: Account) -> dict:
    return {
        "type": "account.health_changed",
        "to": to,
        "from": previous,  # the server's own history, not the CRM's claim
        "crm_from": crm_from,
        "account": account_facts(account),
    }
