"""Usage rolled up per account per day (event time), and the first use of each feature.

Rules read windows such as "active users over the last 30 days against the 30 before"
from these rows, so the cost of a metric does not grow with the number of raw events.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import Model
from app.models.types import JSONType, UTCDateTime


class DailyUsage(Model):
    __tablename__ = "daily_usage"
    __table_args__ = (UniqueConstraint("account_id", "day", name="uq_daily_usage_account_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    day: Mapped[date]
    active_users: Mapped[int | None]  # from usage.daily: the day's figure (a later summary replaces it)
    logins: Mapped[int | None]
    features: Mapped[dict] = mapped_column(JSONType, default=dict)  # feature -> uses that day
    seats: Mapped[int | None]
    new_users: Mapped[int] = mapped_column(default=0)
    nps_score: Mapped[int | None]  # the last answer of the day
    happiness: Mapped[int | None]  # 1 not_happy .. 4 very_happy, the last answer of the day
    tickets: Mapped[int] = mapped_column(default=0)
    tickets_high: Mapped[int] = mapped_column(default=0)  # severity high or urgent
    sentiment_sum: Mapped[float] = mapped_column(default=0.0)
    sentiment_count: Mapped[int] = mapped_column(default=0)
    # The declared metrics' series of the day (app/signals/frame.py): series key -> entry.
    values: Mapped[dict | None] = mapped_column(JSONType)


class FeatureUse(Model):
    """When an account first used a feature: 'first use of a feature' is a rule trigger."""

    __tablename__ = "feature_uses"
    __table_args__ = (UniqueConstraint("account_id", "feature", name="uq_feature_uses_account_feature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    feature: Mapped[str] = mapped_column(String(200))
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime())
