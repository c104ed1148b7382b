"""The computed health score over event time: one point per account per day (the day's last)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime


class HealthScore(Model):
    __tablename__ = "health_scores"
    __table_args__ = (UniqueConstraint("account_id", "day", name="uq_health_scores_account_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    day: Mapped[date]
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)  # event time of the day's last input
    score: Mapped[int]
    band: Mapped[str] = mapped_column(String(40))
    scorecard: Mapped[str] = mapped_column(String(100))
    # indicator -> {"value": metric value, "points": 0-100, "weight": w}: why the score is what it is
    details: Mapped[dict] = mapped_column(JSONType, default=dict)
