"""Scheduled rules (`on: schedule`): the monthly check-in, N days before `renewal_date`.

`run_due_schedules(now)` runs periodically (workers/periodic.py). For every enabled
scheduled rule and every account (not off-boarded) whose period is due, it stores one
internal event `schedule.due` (source "triage", external id
`schedule-<rule>-<account>-<period>`) and hands it to the enforcer like any other event.
The event's unique id is the idempotency key: running it twice in a period launches once.
A rule's `if:` is evaluated once per period, when the period first comes due.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import catalog
from app.extensions import db
from app.matching.enforcer import enforce, is_enabled, rule_states
from app.matching.facts import stored_event_facts
from app.matching.model import SCHEDULE_EVENT, Rule
from app.models import Account, Event
from app.models.types import utcnow
from app.signals.metrics import metrics_for

log = logging.getLogger(__name__)
SOURCE = "triage"


def period_of(rule: Rule, account: Account, today: date) -> str | None:
    """The period a scheduled rule is due for, for this account today; None when not due."""
    schedule = rule.schedule
    assert schedule is not None  # a scheduled rule
    if schedule.kind == "monthly":
        return today.strftime("%Y-%m")
    renewal = account.renewal_date
    if renewal is not None and 0 <= (renewal - today).days <= schedule.days:
        return f"renewal-{renewal.isoformat()}"
    return None


def external_id(rule: Rule, account_id: str, period: str) -> str:
    return f"schedule-{rule.name}-{account_id}-{period}"[:300]


def run_due_schedules(now: datetime | None = None) -> dict:
    """Launch every due scheduled rule once per account and period; returns counts. Commits."""
    now = now or utcnow()
    current = catalog.current()
    rules = [rule for rule in current.ruleset.rules if rule.schedule is not None]
    states = rule_states([rule.name for rule in rules])
    rules = [rule for rule in rules if is_enabled(rule, states.get(rule.name))]
    counts = {"due": 0, "fired": 0}
    if not rules:
        return counts
    account_ids = db.session.scalars(select(Account.id).where(Account.erased_at.is_(None)).order_by(Account.id)).all()
    for rule in rules:
        assert rule.schedule is not None  # only scheduled rules were kept
        for account_id in account_ids:
            account = db.session.get(Account, account_id)
            assert account is not None  # listed above; accounts are erased, never deleted
            period = period_of(rule, account, now.date())
            if period is None:
                continue
            key = external_id(rule, account_id, period)
            if db.session.execute(select(Event.id).where(Event.source == SOURCE, Event.external_id == key)).first():
                continue  # this period was handled already
            event = Event(
                source=SOURCE,
                external_id=key,
                type=SCHEDULE_EVENT,
                account_id=account_id,
                occurred_at=now,
                processed_at=now,
                payload={
                    "id": key,
                    "account_id": account_id,
                    "type": SCHEDULE_EVENT,
                    "occurred_at": now.isoformat(),
                    "properties": {"rule": rule.name, "kind": rule.schedule.kind, "period": period},
                },
            )
            try:
                with db.session.begin_nested():
                    db.session.add(event)
                    db.session.flush()
            except IntegrityError:  # another scheduler got there first
                continue
            counts["due"] += 1
            facts = stored_event_facts(event, account, metrics_for(account_id, now))
            counts["fired"] += sum(1 for firing in enforce(facts, event, account) if firing.outcome == "launched")
            db.session.commit()
    if counts["due"]:
        log.info("scheduled rules: %(due)d due, %(fired)d launched", counts)
    return counts
