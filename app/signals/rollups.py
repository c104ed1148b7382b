"""Applying one usage event to the account's daily rollup (in event time).

Called by process_event under the account's row lock, in the transaction that claims
the event, so each event counts exactly once and late events land on their own day.

Two parts of the row: the fixed columns of the contract's usage types (active users,
logins, seats, ... for the account page's usage chart), and `values`, what the declared
metrics need (app/signals/indicators.py): one entry per series, kept by `add_to_entry` and
`merge_entries` (app/signals/frame.py documents the entry). The history load uses the same
two functions, so a loaded history and a live one roll up alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.extensions import db
from app.models import Account
from app.models.usage import DailyUsage, FeatureUse
from app.signals.indicators import MetricSet, Series, value_at
from app.signals.sentiment import sentiment

HAPPINESS = {"not_happy": 1, "neutral": 2, "happy": 3, "very_happy": 4}
HIGH_SEVERITY = ("high", "urgent")
# A daily summary is the day's figure: a later one for the same day replaces it, not adds to it.
SUMMARY_TYPES = ("usage.daily",)
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


def apply_usage_event(
    account: Account, event_type: str, occurred_at: datetime, properties: dict, metric_set: MetricSet
) -> dict:
    """Update the day's rollup (the fixed columns, and the declared series in `values`); return
    what the event revealed for rules (a feature's first use, a ticket's sentiment)."""
    declared = metric_set.series_for(event_type)
    if event_type not in USAGE_TYPES and not declared:
        return {}  # custom and internal events no metric reads are matched by rules, not rolled up
    properties = signal_properties(event_type, properties)
    account_id = account.id
    day = _day_row(account_id, occurred_at)
    revealed: dict = {}
    if declared:
        _apply_declared(account, day, metric_set, event_type, properties, occurred_at)
    columns = {name: getattr(day, name) for name in COLUMNS}
    apply_columns(columns, event_type, properties)
    for name, value in columns.items():
        if value != getattr(day, name):
            setattr(day, name, value)
    if event_type == "usage.daily" and properties.get("features"):
        revealed["new_features"] = _first_uses(account_id, used_features(properties["features"]), occurred_at)
    elif event_type == "usage.feature_used":
        revealed["new_features"] = _first_uses(account_id, [properties["feature"]], occurred_at)
    if event_type == "support.ticket" and properties.get("sentiment") is not None:
        revealed["sentiment"] = properties["sentiment"]
    if revealed.get("new_features") == []:
        del revealed["new_features"]
    return revealed


# The fixed columns (the contract's usage types, for the usage chart), and a new row's values.
COLUMNS = (
    "active_users",
    "logins",
    "seats",
    "features",
    "new_users",
    "nps_score",
    "happiness",
    "tickets",
    "tickets_high",
    "sentiment_sum",
    "sentiment_count",
)
NEW_ROW = {"features": {}, "new_users": 0, "tickets": 0, "tickets_high": 0, "sentiment_sum": 0.0, "sentiment_count": 0}


def used_features(features: dict) -> list[str]:
    return [name for name, uses in features.items() if uses]


def apply_columns(columns: dict, event_type: str, properties: dict) -> None:
    """One event into the fixed columns of its day (a dict of COLUMNS), in place."""
    if event_type == "usage.daily":
        for field in ("active_users", "logins", "seats"):
            if properties.get(field) is not None:
                columns[field] = properties[field]
        if properties.get("features"):
            columns["features"] = {**(columns.get("features") or {}), **properties["features"]}
    elif event_type == "usage.feature_used":
        features = columns.get("features") or {}
        columns["features"] = {**features, properties["feature"]: features.get(properties["feature"], 0) + 1}
    elif event_type == "users.added":
        columns["new_users"] = (columns.get("new_users") or 0) + properties["count"]
    elif event_type == "seats.changed":
        columns["seats"] = properties["to"]
    elif event_type == "feedback.nps":
        columns["nps_score"] = properties["score"]
    elif event_type == "feedback.happiness":
        columns["happiness"] = HAPPINESS[properties["level"]]
    elif event_type == "support.ticket":
        columns["tickets"] = (columns.get("tickets") or 0) + 1
        if properties.get("severity") in HIGH_SEVERITY:
            columns["tickets_high"] = (columns.get("tickets_high") or 0) + 1
        if properties.get("sentiment") is not None:
            columns["sentiment_sum"] = (columns.get("sentiment_sum") or 0.0) + properties["sentiment"]
            columns["sentiment_count"] = (columns.get("sentiment_count") or 0) + 1


def note_latest(latest: dict, day_iso: str, key: str, entry: dict) -> None:
    """Keep the first day and the newest occurrence of a series in an account's signal_latest
    (in place): {"f": first day, "d": newest day, "v": its value, "t": its event time}."""
    seen = latest.get(key)
    first = min(day_iso, seen.get("f") or seen["d"]) if seen else day_iso
    if seen is None or (entry.get("t") or 0) >= (seen.get("t") or 0):
        latest[key] = {"f": first, "d": day_iso, "v": entry.get("v"), "t": entry.get("t")}
    else:
        latest[key] = {**seen, "f": first}  # a new dict: the stored one may be the ORM's committed state


def _apply_declared(
    account: Account, day: DailyUsage, metric_set: MetricSet, event_type: str, properties: dict, at: datetime
) -> None:
    """The event into the day's series, the account's first day and its newest-seen values."""
    values = dict(day.values or {})
    t = at.timestamp()
    changed = apply_series(values, metric_set, event_type, properties, t)
    if not changed:
        return
    day.values = values  # a new dict: the ORM sees the change
    if account.first_day is None or day.day < account.first_day:
        account.first_day = day.day
    latest = dict(account.signal_latest or {})
    for key in changed:
        note_latest(latest, day.day.isoformat(), key, values[key])
    account.signal_latest = latest


def _day_row(account_id: str, occurred_at: datetime) -> DailyUsage:
    day = occurred_at.date()
    insert = pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
    db.session.execute(
        insert(DailyUsage)
        .values(account_id=account_id, day=day, **NEW_ROW)
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


# ---- the declared series ------------------------------------------------------------------


def signal_properties(event_type: str, properties: dict) -> dict:
    """The properties the series read: the event's, plus what intake derives (a ticket's sentiment)."""
    if event_type == "support.ticket" and "sentiment" not in properties:
        text = " ".join(filter(None, (properties.get("subject"), properties.get("body"))))
        score = sentiment(text) if text else None
        if score is not None:
            return {**properties, "sentiment": score}
    return properties


def apply_series(values: dict, metric_set: MetricSet, event_type: str, properties: dict, t: float) -> list[str]:
    """Add one event to a day's `values` in place; the keys of the series it changed."""
    changed = []
    for series in metric_set.series_for(event_type):
        if series.matches(properties):
            entry = add_to_entry(values.get(series.key), series, properties, t, event_type in SUMMARY_TYPES)
            if entry is not None:
                values[series.key] = entry
                changed.append(series.key)
    return changed


def add_to_entry(entry: dict | None, series: Series, properties: dict, t: float, summary: bool) -> dict | None:
    """The day's entry with one more event of the series; None when the event has no usable value."""
    fresh = _entry_of(series, properties, t)
    if fresh is None:
        return entry
    return fresh if entry is None else merge_entries(entry, fresh, summary)


def _entry_of(series: Series, properties: dict, t: float) -> dict | None:
    if series.path is None:
        return {"n": 1, "t": t}
    raw = value_at(properties, series.path)
    if series.kind == "set":
        if isinstance(raw, dict):
            members = sorted(str(key) for key, uses in raw.items() if _positive(uses))
        elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
            members = [str(raw)]
        else:
            return None
        return {"n": 1, "t": t, "set": members}
    number = series.number(raw)
    if number is None:
        return None
    if series.kind == "by":
        user = value_at(properties, series.by or "")
        if user is None:
            return None
        return {"n": 1, "t": t, "v": number, "by": {str(user): [number, t]}}
    return {"n": 1, "t": t, "v": number, "s": number, "lo": number, "hi": number, "p": 1 if number > 0 else 0}


def _positive(uses: Any) -> bool:
    return isinstance(uses, int | float) and not isinstance(uses, bool) and uses > 0


def merge_entries(a: dict, b: dict, summary: bool = False) -> dict:
    """Two entries of one series and day as one (associative; the newer event time wins ties).
    For a daily summary the newer entry replaces the older one."""
    newer, older = (b, a) if (b.get("t") or 0) >= (a.get("t") or 0) else (a, b)
    if summary:
        return dict(newer)
    merged: dict = {"n": (a.get("n") or 0) + (b.get("n") or 0), "t": newer.get("t")}
    if "v" in newer or "v" in older:
        merged["v"] = newer.get("v", older.get("v"))
    if "s" in a or "s" in b:
        merged["s"] = (a.get("s") or 0) + (b.get("s") or 0)
        merged["p"] = (a.get("p") or 0) + (b.get("p") or 0)
        lows = [x for x in (a.get("lo"), b.get("lo")) if x is not None]
        highs = [x for x in (a.get("hi"), b.get("hi")) if x is not None]
        merged["lo"], merged["hi"] = min(lows), max(highs)
    if "set" in a or "set" in b:
        merged["set"] = sorted(set(a.get("set") or ()) | set(b.get("set") or ()))
    if "by" in a or "by" in b:
        by = dict(older.get("by") or {})
        for user, answer in (newer.get("by") or {}).items():
            if user not in by or answer[1] >= by[user][1]:
                by[user] = answer
        merged["by"] = by
    return merged
