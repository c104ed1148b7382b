"""Inbound events as received, and the outbox that hands them to the workers."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.types import JSONType, UTCDateTime, utcnow


class Event(db.Model):
    """A raw event, committed before the sender gets its 202.

    `(source, external_id)` is the idempotency key: the `webhook-id` for CRM
    webhooks, the event `id` for the events API.
    """

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_events_source_external_id"),
        Index("ix_events_account_occurred", "account_id", "occurred_at"),
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

    outbox: Mapped["OutboxEntry | None"] = relationship(back_populates="event")


class OutboxEntry(db.Model):
    """An event not yet processed. Deleted by the job that processes it.

    Written in the same transaction as the event, so a committed event always
    reaches a worker: the web process enqueues after commit, and the sweeper
    re-enqueues rows whose job never ran (Redis down, Redis restarted empty).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(default=0)

    event: Mapped[Event] = relationship(back_populates="outbox")
