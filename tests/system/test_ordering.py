"""Events of one account apply in order of arrival, whichever job or worker has them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.intake.store import store_event
from app.models import Event, HealthChange
from app.processing import process_batch, process_one
from tests.helpers import stored_health_change

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def stored(db, key: str, to: str, at: datetime) -> int:
    return stored_health_change(db, "acme", to, at, key)


def test_a_later_event_taken_first_applies_the_earlier_ones_before_it(db, app):
    first = stored(db, "w1", "yellow", NOW)
    second = stored(db, "w2", "red", NOW + timedelta(minutes=1))
    third = stored(db, "w3", "green", NOW + timedelta(minutes=2))
    # A second worker's batch with the last event runs before the first worker's batch.
    assert process_batch([third]) == {"processed": 1}
    history = db.session.execute(select(HealthChange.status, HealthChange.previous).order_by(HealthChange.at)).all()
    assert history == [("yellow", None), ("red", "yellow"), ("green", "red")]  # as they arrived
    assert process_one(first) == "already processed" and process_one(second) == "already processed"
    assert all(db.session.scalars(select(Event.processed_at)).all())


def test_an_earlier_event_that_fails_does_not_hold_the_account_up(db, app):
    broken = store_event(
        source="crm",
        external_id="broken",
        type="account.health_changed",
        account_id="acme",
        occurred_at=NOW,
        payload={"type": "account.health_changed", "account": {"id": "acme"}},  # no health: fails to load
    )
    db.session.commit()
    later = stored(db, "ok", "red", NOW + timedelta(minutes=1))
    process_one(later)
    assert db.session.get(Event, later).processed_at is not None
    assert db.session.get(Event, broken.id).processed_at is None  # left to its own job and its retries
