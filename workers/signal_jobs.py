"""Periodic jobs of the signal side (scheduled in workers/schedule.py)."""
from __future__ import annotations

from app.signals.review import review_disagreements
from app.signals.scores import recompute_all
from workers.context import with_app


@with_app
def recompute_scores() -> dict:
    """Move every usage-sending account's score on to today (windows move without events)."""
    return recompute_all()


@with_app
def review_health_statuses() -> dict:
    """Ask CSMs to review statuses the numbers have disagreed with for a while."""
    return review_disagreements()
