"""Storing an inbound event durably, once, with its outbox row; enqueueing after commit."""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from app.extensions import db
from app.models import Event, OutboxEntry

log = logging.getLogger(__name__)


def store_event(*, source: str, external_id: str, type: str, account_id: str,
                occurred_at: datetime, payload: dict) -> Event | None:
    """Add the event and its outbox row in a savepoint; None if this id was seen before.

    The caller commits: only then may it answer 202.
    """
    exists = db.session.query(Event.id).filter_by(source=source, external_id=external_id).first()
    if exists:
        return None
    event = Event(source=source, external_id=external_id, type=type, account_id=account_id,
                  occurred_at=occurred_at, payload=payload)
    try:
        with db.session.begin_nested():
            db.session.add(event)
            db.session.flush()
            db.session.add(OutboxEntry(event_id=event.id))
    except IntegrityError:
        # A concurrent delivery of the same id won the race.
        return None
    return event


def enqueue_events(event_ids: list[int]) -> None:
    """Hand committed events to the workers. A failure here loses nothing: the outbox
    sweeper enqueues whatever is still unprocessed."""
    if not event_ids:
        return
    from workers.jobs import enqueue_process_events

    try:
        enqueue_process_events(event_ids)
    except Exception as exc:  # Redis down: the sweeper takes over
        log.warning("could not enqueue %d event(s) now (%s); the outbox sweeper will", len(event_ids), exc)
