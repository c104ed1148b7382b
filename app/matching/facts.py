"""The facts a rule sees for one event: JSON-native, built from the event and the account.

Shape (docs/interfaces.md, "Facts a rule sees"):

    {"type", "to", "from", "crm_from",            # the last three for health changes only
     "event": {"id", "type", "occurred_at", "properties"},
     "account": {id, name, segment, ..., days_to_renewal, days_as_customer, score},
     "metrics": {name: number or None}}
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from app.accounts import account_facts
from app.models import Account, Event

# Account facts and their kind ("string", "number", "status"), for the loader's type checks.
ACCOUNT_FACTS = {
    "id": "string",
    "name": "string",
    "segment": "string",
    "lifecycle_stage": "string",
    "plan": "string",
    "arr": "number",
    "renewal_date": "string",
    "csm": "string",
    "manager": "string",
    "health": "status",
    "days_to_renewal": "number",
    "days_as_customer": "number",
    "score": "number",
}


def event_facts(*, event: Event, account: Account, metrics: dict | None = None, health: dict | None = None) -> dict:
    """The facts for one stored event, computed in event time (`occurred_at`).

    `health`, for a status change: {"to", "from" (the server's previous status), "crm_from"}.
    """
    at = _aware(event.occurred_at) if event.occurred_at else datetime.now(UTC)
    payload = event.payload or {}
    facts: dict[str, Any] = {
        "type": event.type,
        "event": {
            "id": event.external_id,
            "type": event.type,
            "occurred_at": at.isoformat(),
            "properties": _json(payload.get("properties") or {}),
        },
        "account": account_facts_at(account, at.date()),
        "metrics": {name: _json(value) for name, value in (metrics or {}).items()},
    }
    if health is not None:
        facts["to"] = health.get("to")
        facts["from"] = health.get("from", health.get("previous"))
        facts["crm_from"] = health.get("crm_from", health.get("from_"))
    return facts


def account_facts_at(account: Account, today: date) -> dict:
    """`account_facts` plus the day counts rules ask for, as of `today` (event time)."""
    facts = account_facts(account)
    renewal = account.renewal_date
    since = getattr(account, "customer_since", None)
    facts["days_to_renewal"] = (renewal - today).days if renewal else None
    facts["days_as_customer"] = (today - since).days if since else None
    facts["score"] = getattr(account, "score", None)
    return facts


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    """JSON-native copy: the engine rejects datetimes, decimals become floats."""
    if isinstance(value, dict):
        return {str(key): _json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def stored_event_facts(event: Event, account: Account, metrics: dict | None = None, health: dict | None = None) -> dict:
    """`event_facts` plus what internal events carry: a due schedule's {rule, kind, period}."""
    facts = event_facts(event=event, account=account, metrics=metrics, health=health)
    if event.type == "schedule.due":
        properties = (event.payload or {}).get("properties") or {}
        facts["schedule"] = {key: properties.get(key) for key in ("rule", "kind", "period")}
    return facts
