"""The record every rule firing leaves: which rule, which ruleset version, which event."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import JSONType, UTCDateTime, utcnow


class RuleFiring(db.Model):
    __tablename__ = "rule_firings"
    # One firing per rule per event: processing an event twice launches nothing twice.
    __table_args__ = (UniqueConstraint("event_id", "rule", name="uq_rule_firings_event_rule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(200), index=True)
    ruleset_version: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    playbook: Mapped[str] = mapped_column(String(200))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    facts: Mapped[dict] = mapped_column(JSONType)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
    outcome: Mapped[str] = mapped_column(String(40), default="launched")
