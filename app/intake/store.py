"""Storing an inbound event durably, once (unprocessed: the outbox, see `Event`); enqueued
after commit (app/jobs.py)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.jobs import enqueue_events
from app.models import Event
from app.models.types import utcnow

log = logging.getLogger(__name__)


def store_event(
    *, source: str, external_id: str, type: str, account_id: str, occurred_at: datetime, payload: dict
) -> Event | None:
    """One event through `store_events`; the stored Event, or None if this id was seen before.

    The caller commits: only then may it answer 202.
    """
    event_ids, _ = store_events(
        source,
        [
            {
                "external_id": external_id,
                "type": type,
                "account_id": account_id,
                "occurred_at": occurred_at,
                "payload": payload,
            }
        ],
    )
    return db.session.get(Event, event_ids[0]) if event_ids else None


def store_events(source: str, rows: list[dict]) -> tuple[list[int], int]:
    """Add a batch of events, unprocessed; return (new event ids, duplicates).

    Rows are dicts of external_id, type, account_id, occurred_at, payload. Ids stored
    before (ON CONFLICT DO NOTHING, which also settles a concurrent request with the same
    id), or repeated within the batch, are duplicates. The caller commits.
    """
    first: dict[str, dict] = {}
    for row in rows:  # the first copy wins, at its own place: events are applied in order of arrival
        first.setdefault(row["external_id"], row)
    unique = list(first.values())
    # No look-up first: the unique index decides, and only the inserted rows come back.
    fresh = [dict(row, source=source) for row in unique]
    event_ids: list[int] = []
    if fresh:
        dialect_insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
        # The table, not the ORM entity: Core's batched INSERT ... RETURNING, without the ORM's
        # bulk bookkeeping per row (it mattered at 5,000 events/s).
        table = cast(Table, Event.__table__)  # typed FromClause; a declarative model's is its Table
        statement = (
            dialect_insert(table).on_conflict_do_nothing(index_elements=["source", "external_id"]).returning(table.c.id)
        )
        received = utcnow()
        event_ids = list(db.session.execute(statement, [dict(row, received_at=received) for row in fresh]).scalars())
    return event_ids, len(rows) - len(event_ids)


def accept_rows(source: str, items: list, to_row, what: str) -> tuple[list[int], int]:
    """Map every delivered item to an Event row, all or nothing, then store and commit.

    `to_row(item)` raises ValueError for an item it cannot map; the 400 names each one by
    index and nothing is stored. Returns (new event ids, duplicates), already enqueued.
    """
    from app.errors import ApiError

    rows, errors = [], {}
    for index, item in enumerate(items):
        try:
            rows.append(to_row(item))
        except ValueError as exc:
            errors[str(index)] = [str(exc)]
    if errors:
        raise ApiError(400, f"{len(errors)} invalid {what}; nothing was stored", details=errors)
    event_ids, duplicates = store_events(source, rows)
    db.session.commit()
    enqueue_events(event_ids)
    return event_ids, duplicates
