"""Inbound events as received. The events table is its own outbox: see `Event`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime, utcnow


class Event(Model):
    """A raw event, committed before the sender gets its 202.

    `(source, external_id)` is the idempotency key: the `webhook-id` for CRM
    webhooks, the event `id` for the events API.

    The outbox: an event with no `processed_at` has not been applied yet. It is committed
    before the sender gets its 202; the web process enqueues it after the commit, the job that
    applies it sets `processed_at` in the same transaction, and the sweeper re-enqueues one
    whose job is gone (Redis down, Redis restarted empty), at most MAX_SWEEPS times (`sweeps`).
    A partial index keeps finding them cheap however large the table grows; it replaced a
    separate outbox table, whose insert and delete cost two statements per event.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_events_source_external_id"),
        Index("ix_events_account_occurred", "account_id", "occurred_at"),
        Index(
            "ix_events_unprocessed",
            "id",
            postgresql_where=text("processed_at IS NULL"),
            sqlite_where=text("processed_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(300))
    type: Mapped[str] = mapped_column(String(100), index=True)
    account_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    payload: Mapped[dict] = mapped_column(JSONType)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None]
    sweeps: Mapped[int] = mapped_column(default=0, server_default="0")  # times the sweeper re-enqueued it
