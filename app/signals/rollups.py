"""Applying one usage event to the account's daily rollup (in event time).

Called by process_event under the account's row lock, in the transaction that claims
the event, so each event counts exactly once and late events land on their own day.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.models.usage import DailyUsage, FeatureUse
from app.signals.sentiment import sentiment

HAPPINESS = {"not_happy": 1, "neutral": 2, "happy": 3, "very_happy": 4}
HIGH_SEVERITY = ("high", "urgent")
# The event types that feed the rollups (and so the metrics and the score).
USAGE_TYPES = (
    "usage.daily",
    "usage.feature_used",
    "users.added",
    "seats.changed",
    "feedback.nps",
    "feedback.happiness",
    "support.ticket",
)


def apply_usage_event(account_id: str, event_type: str, occurred_at: datetime, properties: dict) -> dict:
    """Update the rollup; return what the event revealed for rules (e.g. a feature's first use)."""
    if event_type not in USAGE_TYPES:
        return {}  # custom and internal events are matched by rules, not rolled up
    day = _day_row(account_id, occurred_at)
    revealed: dict = {}
    if event_type == "usage.daily":
        for field in ("active_users", "logins", "seats"):
            if properties.get(field) is not None:
                setattr(day, field, properties[field])
        if properties.get("features"):
            day.features = {**(day.features or {}), **properties["features"]}
            revealed["new_features"] = _first_uses(
                account_id, [f for f, n in properties["features"].items() if n], occurred_at
            )
    elif event_type == "usage.feature_used":
        feature = properties["feature"]
        day.features = {**(day.features or {}), feature: (day.features or {}).get(feature, 0) + 1}
        revealed["new_features"] = _first_uses(account_id, [feature], occurred_at)
    elif event_type == "users.added":
        day.new_users = (day.new_users or 0) + properties["count"]
    elif event_type == "seats.changed":
        day.seats = properties["to"]
    elif event_type == "feedback.nps":
        day.nps_score = properties["score"]
    elif event_type == "feedback.happiness":
        day.happiness = HAPPINESS[properties["level"]]
    elif event_type == "support.ticket":
        day.tickets = (day.tickets or 0) + 1
        if properties.get("severity") in HIGH_SEVERITY:
            day.tickets_high = (day.tickets_high or 0) + 1
        score = sentiment(" ".join(filter(None, (properties.get("subject"), properties.get("body")))))
        if score is not None:
            day.sentiment_sum = (day.sentiment_sum or 0.0) + score
            day.sentiment_count = (day.sentiment_count or 0) + 1
            revealed["sentiment"] = score
    if revealed.get("new_features") == []:
        del revealed["new_features"]
    return revealed


def _day_row(account_id: str, occurred_at: datetime) -> DailyUsage:
    day = occurred_at.date()
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(DailyUsage)
        .values(
            account_id=account_id,
            day=day,
            features={},
            new_users=0,
            tickets=0,
            tickets_high=0,
            sentiment_sum=0.0,
            sentiment_count=0,
        )
        .on_conflict_do_nothing(index_elements=["account_id", "day"])
    )
    return db.session.execute(
        select(DailyUsage).where(DailyUsage.account_id == account_id, DailyUsage.day == day)
    ).scalar_one()


def _first_uses(account_id: str, features: list[str], occurred_at: datetime) -> list[str]:
    """The features used here for the first time (in event time: an earlier late event wins)."""
    if not features:
        return []
    known = {
        use.feature: use
        for use in db.session.execute(
            select(FeatureUse).where(FeatureUse.account_id == account_id, FeatureUse.feature.in_(features))
        ).scalars()
    }
    new = []
    for feature in features:
        use = known.get(feature)
        if use is None:
            db.session.add(FeatureUse(account_id=account_id, feature=feature, first_used_at=occurred_at))
            new.append(feature)
        elif occurred_at < use.first_used_at:
            use.first_used_at = occurred_at
    db.session.flush()
    return new
