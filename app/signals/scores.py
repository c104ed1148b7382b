"""Scoring an account in event time: one health score per account and day.

An input on day D scores D and every day its windows reach: the silent days since the last
score (a day without events still has a score: its windows slid on), and, for a late event,
the later days whose windows include D. A change of band on the newest day (the colour the
numbers point to now) becomes the internal event `health.score_band_changed`, so rules can
act on it like on any other event. A late event that moves the newest day's band (its window
reaches today) changes the present too, and says so; one that only corrects older days changes
the history alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select

from app import catalog
from app.extensions import db
from app.intake.store import store_event
from app.models import Account, Event
from app.models.score import HealthScore
from app.models.types import utcnow
from app.signals.metrics import metrics_on_days
from app.signals.scorecards import Scorecard, Scorecards

log = logging.getLogger(__name__)
# The most silent days scored in one go after a long gap (the daily job scores every account
# every day, so a longer gap means the account's first score or a server that was down).
MAX_FILL_DAYS = 400


def scorecards() -> Scorecards:
    """The live scorecards (reloaded with the rest of the files, app/catalog.py)."""
    return catalog.current().scorecards


def rescore(account: Account, at: datetime) -> tuple[dict, Event | None]:
    """Score `at`'s day and the days it affects; return that day's metrics (for the rules) and
    the band-change event it caused, if any. The caller holds the account lock and commits
    (then enqueues the returned event)."""
    day = at.date()
    newest = account.score_day
    days = days_to_score(day, newest, catalog.current().metrics.span(), account.first_day)
    metrics = metrics_on_days(account, days)
    card = scorecards().for_account(account)
    if card is None:
        return metrics[day], None
    band_change = None
    # The usual event is on the newest day or the next: no look-up of the history is needed.
    existing = {}
    if newest is not None and days[0] <= newest:
        existing = {
            row.day: row
            for row in db.session.execute(
                select(HealthScore).where(
                    HealthScore.account_id == account.id, HealthScore.day >= days[0], HealthScore.day <= days[-1]
                )
            ).scalars()
        }
    previous_band = account.score_band if newest is None or days[0] > newest else _band_before(account.id, days[0])
    for scored_day in days:
        row = existing.get(scored_day)
        point_at = at if scored_day == day else day_end(scored_day)
        stored = _store(account, card, scored_day, point_at, metrics[scored_day], row)
        if stored is None:
            continue
        score, band = stored
        if scored_day == days[-1] and (newest is None or scored_day >= newest):  # the present
            account.score, account.score_day, account.score_band = score, scored_day, band
            before = row.band if row is not None else previous_band
            if before is not None and before != band:
                band_change = _band_event(account, scored_day, at, before, band, card.name)
        previous_band = band
    return metrics[day], band_change


def days_to_score(day: date, newest: date | None, span: int, first_day: date | None) -> list[date]:
    """`day`, the silent days between the newest score and it, and (for a late input) the later
    scored days whose windows reach back to it."""
    start = day
    if newest is not None and newest < day:
        start = max(newest + timedelta(days=1), day - timedelta(days=MAX_FILL_DAYS))
    elif newest is None and first_day is not None and first_day < day:
        start = max(first_day, day - timedelta(days=MAX_FILL_DAYS))
    end = day
    if newest is not None and newest > day:
        end = min(newest, day + timedelta(days=span))
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def day_end(day: date) -> datetime:
    """The time a score of a day without its own input stands at: the day's last second, UTC."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _band_before(account_id: str, day: date) -> str | None:
    return db.session.scalar(
        select(HealthScore.band)
        .where(HealthScore.account_id == account_id, HealthScore.day < day)
        .order_by(HealthScore.day.desc())
        .limit(1)
    )


def _store(
    account: Account, card: Scorecard, day: date, at: datetime, metrics: dict, row: HealthScore | None
) -> tuple[int, str] | None:
    """Write the day's point; (score, band), or None when the metrics give no score."""
    score, details = card.evaluate(metrics)
    if score is None:
        return None
    band = card.band(score)
    if row is None:
        db.session.add(
            HealthScore(
                account_id=account.id, day=day, at=at, score=score, band=band, scorecard=card.name, details=details
            )
        )
    else:
        row.at, row.score, row.band, row.scorecard, row.details = max(row.at, at), score, band, card.name, details
    return score, band


def _band_event(account: Account, day: date, at: datetime, before: str, band: str, card: str) -> Event | None:
    return store_event(
        source="triage",
        external_id=f"band-{account.id}-{day.isoformat()}-{before}-{band}",
        type="health.score_band_changed",
        account_id=account.id,
        occurred_at=at,
        payload={
            "id": f"band-{account.id}-{day.isoformat()}",
            "account_id": account.id,
            "type": "health.score_band_changed",
            "occurred_at": at.isoformat(),
            "properties": {"from": before, "to": band, "score": account.score, "scorecard": card},
        },
    )


def recompute_all(at: datetime | None = None) -> dict:
    """The daily recompute: windows move on even when no event arrives (a silent account's
    usage falls to nothing). One transaction per account, band changes enqueued after."""
    from app.accounts import lock_account
    from app.jobs import enqueue_process_events
    from app.models.usage import DailyUsage

    at = at or utcnow()
    # Only accounts that send usage have a score: a CRM-only account's zeros mean nothing.
    account_ids = (
        db.session.execute(
            select(Account.id)
            .where(Account.erased_at.is_(None), Account.id.in_(select(DailyUsage.account_id).distinct()))
            .order_by(Account.id)
        )
        .scalars()
        .all()
    )
    changes = []
    for account_id in account_ids:
        account = lock_account(account_id)
        _, change = rescore(account, at)
        db.session.commit()
        if change is not None:
            changes.append(change.id)
    enqueue_process_events(changes)
    return {"accounts": len(account_ids), "band_changes": len(changes)}
