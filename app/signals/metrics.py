"""An account's metrics as of a day, in event time: the declared ones and the built-in facts.

The declared metrics (metrics/*.yml, app/signals/indicators.py) are computed from the daily
rollups by app/signals/frame.py; the built-ins (tenure, days to renewal, days since the
decision maker changed) from the account. Every window ends with the day asked for, so a
history replayed today gives the metrics it gave live. docs/signals.md lists the shipped ones.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select

from app import catalog
from app.extensions import db
from app.models import Account
from app.models.usage import DailyUsage
from app.signals.frame import Carried, Frame, compute
from app.signals.indicators import MetricSet

# Rows read at a time when a `latest` value lies before the days a frame reads (rare: a
# history recomputed far back; the live path finds it in accounts.signal_latest).
LOOKBACK_CHUNK = 200

_ROWS = (
    select(DailyUsage.day, DailyUsage.values)
    .where(
        DailyUsage.account_id == bindparam("account_id"),
        DailyUsage.day >= bindparam("first"),
        DailyUsage.day <= bindparam("last"),
    )
    .order_by(DailyUsage.day)
)  # built once: this runs for every event


def live_metric_set() -> MetricSet:
    return catalog.current().metrics


def metrics_for(account_id: str, at: datetime) -> dict:
    """Every metric of the account as of `at`'s day (declared and built in)."""
    account = db.session.get(Account, account_id)
    if account is None:
        return {}
    day = at.date()
    return metrics_on_days(account, [day])[day]


def metrics_on_days(account: Account, days: list[date], metric_set: MetricSet | None = None) -> dict[date, dict]:
    """Every metric for each of `days`, from one read of the rollups."""
    metric_set = metric_set or live_metric_set()
    frame = read_frame(account, min(days) - timedelta(days=metric_set.span()), max(days), metric_set)
    results = compute(metric_set, frame, days)
    for day in days:
        results[day].update(builtin_metrics(account, day))
    return results


def builtin_metrics(account: Account, day: date) -> dict:
    """The built-in facts (indicators.BUILTIN) as of `day`."""
    start = account.customer_since or account.first_day
    changed = account.decision_maker_changed_at
    return {
        "tenure_days": (day - start).days if start and start <= day else None,
        "days_to_renewal": (account.renewal_date - day).days if account.renewal_date else None,
        "days_since_decision_maker_changed": (day - changed.date()).days if changed and changed.date() <= day else None,
    }


def read_frame(account: Account, first: date, last: date, metric_set: MetricSet) -> Frame:
    """The account's rollups from `first` to `last`, with what `latest` metrics need from before."""
    data_start = account.first_day
    frame_first = max(first, data_start) if data_start else first
    rows = db.session.execute(_ROWS, {"account_id": account.id, "first": frame_first, "last": last}).all()
    frame = Frame(
        first=frame_first,
        last=max(last, frame_first),
        data_start=data_start,
        days={r.day: r.values or {} for r in rows},
    )
    frame.carried = _carried(account, frame_first, _unbounded_keys(metric_set))
    frame.series_start = {
        key: date.fromisoformat(seen.get("f") or seen["d"]) for key, seen in (account.signal_latest or {}).items()
    }
    return frame


def _unbounded_keys(metric_set: MetricSet) -> set[str]:
    """The series of `latest` and `days_since` metrics without a window: they look back however far."""
    return {
        series.key
        for metric in metric_set.metrics
        if metric.aggregate in ("latest", "days_since") and not metric.window
        for series in metric.sources
    }


def _carried(account: Account, before: date, keys: set[str]) -> dict[str, Carried]:
    """The newest occurrence of each series before `before`: from accounts.signal_latest when
    that is older than `before` (the live case), else from the rows before it."""
    summary = account.signal_latest or {}
    carried, missing = {}, set()
    for key in keys:
        newest = summary.get(key)
        if newest is None:
            continue  # never seen: nothing to carry
        if date.fromisoformat(newest["d"]) < before:
            carried[key] = Carried(date.fromisoformat(newest["d"]), newest.get("v"), newest.get("t"))
        else:
            missing.add(key)  # the newest is inside or after the frame; an older one may exist
    if missing and account.first_day and account.first_day < before:
        carried.update(_latest_before(account.id, before, missing))
    return carried


def _latest_before(account_id: str, before: date, keys: set[str]) -> dict[str, Carried]:
    found: dict[str, Carried] = {}
    cursor = before
    while keys - set(found):
        rows = db.session.execute(
            select(DailyUsage.day, DailyUsage.values)
            .where(DailyUsage.account_id == account_id, DailyUsage.day < cursor)
            .order_by(DailyUsage.day.desc())
            .limit(LOOKBACK_CHUNK)
        ).all()
        for row in rows:
            for key in keys - set(found):
                entry = (row.values or {}).get(key)
                if entry and entry.get("n"):
                    found[key] = Carried(row.day, entry.get("v"), entry.get("t"))
        if len(rows) < LOOKBACK_CHUNK:
            break
        cursor = rows[-1].day
    return found
