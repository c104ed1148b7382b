"""How many SQL statements processing an event costs: a guard on the worker's hot path.

Issue 7's 50 webhooks/s on two cores were reached by cutting a red status change from 19
statements to 13 (bench/RESULTS.md). Counting is exact and machine-independent, unlike timing:
a change that adds a round trip per event fails here, and must either earn it or find another way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from app.intake.store import store_event
from app.models import Account, Event, Task
from tests.helpers import stored_health_change

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def statements_of(db, fn) -> list[str]:
    """The statements fn sends, one per round trip: SQLAlchemy batches a flush's rows of one
    table into one INSERT on PostgreSQL, and on SQLite (in process, no round trip) executes it
    once per row; those repeats count once."""
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        statement = " ".join(statement.split())[:120]
        if not (seen and statement == seen[-1] and statement.startswith("INSERT")):
            seen.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        fn()
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    return seen


def stored_webhook(db, account_id: str, to: str, at: datetime, key: str) -> int:
    return stored_health_change(db, account_id, to, at, key, contacts=False)


@pytest.mark.parametrize("known", [False, True], ids=["new account", "known account"])
def test_a_red_status_change_costs_at_most_13_statements_or_14_for_a_new_account(db, app, known):
    from app.processing import process_one

    if known:  # the account exists already, green, with nothing open
        db.session.add(
            Account(
                id="acme",
                name="Acme GmbH",
                csm="ana@vendor.example",
                manager="mo@vendor.example",
                health_status="green",
                health_since=NOW - timedelta(days=3),
            )
        )
        db.session.commit()
    event_id = stored_webhook(db, "acme", "red", NOW, "red")
    seen = statements_of(db, lambda: process_one(event_id))

    # A known account going from green to red: 13, with the look for snoozed tasks to wake (worse
    # news wakes them). A new account: 14, its INSERT and the look-up of the event's account id
    # (the account's lock comes before the claim, so that its events apply in order of arrival
    # whichever worker has them: app/processing.py).
    assert len(seen) <= (13 if known else 14), "\n".join(seen)
    # and it did its work: the action plan's two tasks
    assert db.session.scalar(select(func.count(Task.id)).where(Task.status == "open")) == 2


def test_a_usage_event_costs_at_most_10_statements(db, app):
    from app.processing import process_one

    for day in range(10):  # some history, so metrics and score have rows to read
        at = NOW - timedelta(days=10 - day)
        key = f"u-{day}"
        event = store_event(
            source="api",
            external_id=key,
            type="usage.daily",
            account_id="acme",
            occurred_at=at,
            payload={
                "id": key,
                "account_id": "acme",
                "type": "usage.daily",
                "occurred_at": at.isoformat(),
                "properties": {"active_users": 40, "logins": 90},
            },
        )
        db.session.commit()
        process_one(event.id)
    event = store_event(
        source="api",
        external_id="u-now",
        type="usage.daily",
        account_id="acme",
        occurred_at=NOW,
        payload={
            "id": "u-now",
            "account_id": "acme",
            "type": "usage.daily",
            "occurred_at": NOW.isoformat(),
            "properties": {"active_users": 41, "logins": 92},
        },
    )
    db.session.commit()
    # What the history caused (a band change is an event of its own) is processed first, as a
    # worker would have: an earlier unprocessed event of the account would be applied before it.
    for pending in db.session.scalars(
        select(Event.id).where(Event.processed_at.is_(None), Event.id < event.id).order_by(Event.id)
    ).all():
        process_one(pending)
    seen = statements_of(db, lambda: process_one(event.id))
    assert len(seen) <= 10, "\n".join(seen)
