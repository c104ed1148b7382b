"""Metrics over event-time windows, read from the daily rollups (docs/interfaces.md lists them).

All windows end at `at` (the event's occurred_at), so a history replayed today gives the
same metrics as it did live.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select, union_all

from app.extensions import db
from app.models.usage import DailyUsage

METRICS = (
    "active_users_avg_30d",
    "active_users_avg_prev_30d",
    "active_users_change_pct_30d",
    "logins_7d",
    "logins_30d",
    "new_users_30d",
    "seats",
    "nps_last",
    "days_since_nps",
    "happiness_last",
    "tickets_30d",
    "tickets_high_30d",
    "ticket_sentiment_30d",
    "features_used_30d",
)
# A change in active users needs a baseline: at least this many days with data before.
MIN_BASELINE_DAYS = 7


COLUMNS = (
    DailyUsage.day,
    DailyUsage.active_users,
    DailyUsage.logins,
    DailyUsage.features,
    DailyUsage.seats,
    DailyUsage.new_users,
    DailyUsage.nps_score,
    DailyUsage.happiness,
    DailyUsage.tickets,
    DailyUsage.tickets_high,
    DailyUsage.sentiment_sum,
    DailyUsage.sentiment_count,
)
# Metrics that take the latest value however old (an NPS answer from last year is still the last).
LATEST = (("nps_score", DailyUsage.nps_score), ("happiness", DailyUsage.happiness), ("seats", DailyUsage.seats))


def metrics_for(account_id: str, at: datetime) -> dict:
    today = at.date()
    start_30, start_prev = today - timedelta(days=29), today - timedelta(days=59)
    rows, older = _read(account_id, start_prev, today)
    recent = [r for r in rows if r.day >= start_30]
    previous = [r for r in rows if r.day < start_30]
    avg_30 = _mean([r.active_users for r in recent])
    prev_values = [r.active_users for r in previous if r.active_users is not None]
    avg_prev = _mean(prev_values) if len(prev_values) >= MIN_BASELINE_DAYS else None
    change = None
    if avg_30 is not None and avg_prev:
        change = round((avg_30 - avg_prev) / avg_prev * 100, 1)
    sentiment_count = sum(r.sentiment_count or 0 for r in recent)
    latest = _latest(rows, older, LATEST)
    nps_day, nps = latest["nps_score"]
    happiness, seats = latest["happiness"][1], latest["seats"][1]
    features = set()
    for r in recent:
        features.update(name for name, uses in (r.features or {}).items() if uses)
    return {
        "active_users_avg_30d": avg_30,
        "active_users_avg_prev_30d": avg_prev,
        "active_users_change_pct_30d": change,
        "logins_7d": sum(r.logins or 0 for r in recent if r.day > today - timedelta(days=7)),
        "logins_30d": sum(r.logins or 0 for r in recent),
        "new_users_30d": sum(r.new_users or 0 for r in recent),
        "seats": seats,
        "nps_last": nps,
        "days_since_nps": (today - nps_day).days if nps_day else None,
        "happiness_last": happiness,
        "tickets_30d": sum(r.tickets or 0 for r in recent),
        "tickets_high_30d": sum(r.tickets_high or 0 for r in recent),
        "ticket_sentiment_30d": round(sum(r.sentiment_sum or 0 for r in recent) / sentiment_count, 3)
        if sentiment_count
        else None,
        "features_used_30d": len(features),
    }


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 2) if values else None


def _read(account_id: str, first: date, last: date) -> tuple[list, list]:
    """The 60 days' rows, and for each of LATEST the newest row before them that has it, in one
    round trip (this runs for every event): plain rows, not ORM objects, as object loading is
    the cost. Each part is an index range on (account_id, day)."""
    rows = db.session.execute(_READ, {"account_id": account_id, "first": first, "last": last}).all()
    rows.sort(key=lambda row: row.day)
    return [r for r in rows if r.day >= first], [r for r in rows if r.day < first]


def _read_statement():
    """Built once: constructing this union costs more than running it."""
    account_id, first, last = bindparam("account_id"), bindparam("first"), bindparam("last")
    window = select(*COLUMNS).where(
        DailyUsage.account_id == account_id, DailyUsage.day >= first, DailyUsage.day <= last
    )
    # SQLite takes no ORDER BY / LIMIT inside a compound SELECT: each older pick is a subquery.
    picks = [
        select(*COLUMNS)
        .where(DailyUsage.account_id == account_id, DailyUsage.day < first, column.is_not(None))
        .order_by(DailyUsage.day.desc())
        .limit(1)
        .subquery()
        for _, column in LATEST
    ]
    return union_all(window, *(select(*pick.c) for pick in picks))


_READ = _read_statement()


def _latest(rows: list, older: list, columns) -> dict[str, tuple]:
    """(day, value) of the latest known value of each column up to today: from the 60 days,
    else from the newest older row that has it, else (None, None)."""
    found = {}
    for name, _ in columns:
        found[name] = next(
            (
                (row.day, getattr(row, name))
                for source in (rows, older)
                for row in reversed(source)
                if getattr(row, name) is not None
            ),
            (None, None),
        )
    return found
