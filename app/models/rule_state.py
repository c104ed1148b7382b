"""What CS ops (or the brake) changed about a rule at run time, on top of its file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import UTCDateTime, utcnow


class RuleState(Model):
    """One row per rule that was ever toggled or braked; no row means "as the file says".

    `enabled` overrides the file's `enabled:` when set. `paused_at` is set by the brake
    (over budget) and cleared by a person (Resume); a paused rule launches nothing.
    """

    __tablename__ = "rule_states"

    rule: Mapped[str] = mapped_column(String(200), primary_key=True)
    enabled: Mapped[bool | None]
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(254))
