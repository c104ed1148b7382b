"""Accounts (the customers), their contacts and their health history."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime, utcnow

HEALTH_STATUSES = ("green", "yellow", "red", "black")


class Account(Model):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the CRM's id
    name: Mapped[str | None] = mapped_column(String(300))
    segment: Mapped[str | None] = mapped_column(String(100), index=True)
    lifecycle_stage: Mapped[str | None] = mapped_column(String(100))
    plan: Mapped[str | None] = mapped_column(String(100))
    arr: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    renewal_date: Mapped[date | None]
    csm: Mapped[str | None] = mapped_column(String(254), index=True)
    manager: Mapped[str | None] = mapped_column(String(254))
    health_status: Mapped[str | None] = mapped_column(String(40), index=True)
    health_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    health_reason: Mapped[str | None] = mapped_column(Text)
    score: Mapped[int | None]
    customer_since: Mapped[date | None]
    # The signal side (app/signals/): the first day with usage data (windows start there), the
    # newest occurrence of each declared series, and when the decision maker contact changed.
    first_day: Mapped[date | None]
    signal_latest: Mapped[dict | None] = mapped_column(JSONType)
    decision_maker_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    score_day: Mapped[date | None]  # the newest score's day and band (app/signals/scores.py)
    score_band: Mapped[str | None] = mapped_column(String(40))
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="account", cascade="all, delete-orphan", order_by="Contact.id"
    )

    def __str__(self) -> str:
        return self.name or self.id


class Contact(Model):
    """A person at the customer: personal data, erased by off-boarding."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str | None] = mapped_column(String(100))

    account: Mapped[Account] = relationship(back_populates="contacts")


class HealthChange(Model):
    """One status change, as the server saw it (`previous`) and as the CRM claimed (`crm_from`)."""

    __tablename__ = "health_changes"
    __table_args__ = (Index("ix_health_changes_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    status: Mapped[str] = mapped_column(String(40))
    previous: Mapped[str | None] = mapped_column(String(40))
    crm_from: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text)
    changed_by: Mapped[str | None] = mapped_column(String(254))
    source: Mapped[str] = mapped_column(String(40), default="crm")
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
