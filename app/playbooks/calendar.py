"""Business days: Monday to Friday (public holidays are not known to the server)."""

from __future__ import annotations

from datetime import datetime, timedelta


def add_business_days(start: datetime, days: int) -> datetime:
    """`start` moved forward by `days` weekdays, keeping the time of day.

    From a Saturday or Sunday, counting starts on the Monday after.
    """
    current = start
    while current.weekday() >= 5:
        current += timedelta(days=1)
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current
