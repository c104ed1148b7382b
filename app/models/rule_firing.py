"""The record every rule firing leaves: which rule, which ruleset version, which event."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime, utcnow


class RuleFiring(Model):
    __tablename__ = "rule_firings"
    # One firing per rule per event: processing an event twice launches nothing twice.
    __table_args__ = (
        UniqueConstraint("event_id", "rule", name="uq_rule_firings_event_rule"),
        # the brake counts a rule's recent launches; the throttle looks up its group
        Index("ix_rule_firings_rule_fired", "rule", "fired_at"),
        Index("ix_rule_firings_rule_throttle", "rule", "throttle_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(200), index=True)
    ruleset_version: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id"))
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    playbook: Mapped[str] = mapped_column(String(200))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    facts: Mapped[dict] = mapped_column(JSONType)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("playbook_runs.id"))
    # launched, superseded, run_already_open, throttled, braked, paused, disabled, param_error
    outcome: Mapped[str] = mapped_column(String(40), default="launched")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # the event's time (throttle windows)
    throttle_key: Mapped[str | None] = mapped_column(String(500))  # the rule's group_by values, as JSON
    detail: Mapped[str | None] = mapped_column(Text)  # why it did not launch, when it did not
