"""Recomputing an account's health score when an input changes, in event time.

A change of band (the colour the numbers point to) becomes the internal event
`health.score_band_changed`, so rules can act on it like on any other event.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from flask import Flask, current_app
from sqlalchemy import select

from app.catalog import files_signature
from app.extensions import db
from app.filecheck import FileErrors
from app.intake.store import store_event
from app.models import Account, Event
from app.models.score import HealthScore
from app.signals.scorecards import Scorecards, load_scorecards

log = logging.getLogger(__name__)


def load(app: Flask) -> None:
    """Load scorecards/ at start (a broken file stops the start, like a broken rule file)."""
    folder = app.config["SCORECARDS_DIR"]
    app.extensions["triage_scorecards"] = load_scorecards(folder)
    app.extensions["triage_scorecards_seen"] = {"signature": files_signature(folder), "checked": time.monotonic()}


def scorecards() -> Scorecards:
    """The live scorecards, reloaded when their files change (checked at most every
    RULES_RELOAD_SECONDS). A changed set that does not load is refused and logged; the last
    good one stays live, as with rules."""
    app = current_app._get_current_object()
    seen = app.extensions["triage_scorecards_seen"]
    interval = app.config.get("RULES_RELOAD_SECONDS", 2)
    if interval > 0 and time.monotonic() - seen["checked"] >= interval:
        seen["checked"] = time.monotonic()
        signature = files_signature(app.config["SCORECARDS_DIR"])
        if signature != seen["signature"]:
            seen["signature"] = signature
            try:
                app.extensions["triage_scorecards"] = load_scorecards(app.config["SCORECARDS_DIR"])
                log.info("scorecards reloaded: version %s", app.extensions["triage_scorecards"].version)
            except FileErrors as exc:
                log.error("scorecard files changed but do not load; the previous ones stay live:\n%s", exc)
    return app.extensions["triage_scorecards"]


def recompute(account: Account, at: datetime, metrics: dict) -> Event | None:
    """Store the score for `at`'s day; return the band-change event it caused, if any.

    The caller holds the account lock and commits (then enqueues the returned event).
    """
    card = scorecards().for_account(account)
    if card is None:
        return None
    score, details = card.evaluate(metrics)
    if score is None:
        return None
    band = card.band(score)
    day = at.date()
    # The newest two points up to this day: this day's (if any) and the one before it.
    latest = (
        db.session.execute(
            select(HealthScore)
            .where(HealthScore.account_id == account.id, HealthScore.day <= day)
            .order_by(HealthScore.day.desc())
            .limit(2)
        )
        .scalars()
        .all()
    )
    row = latest[0] if latest and latest[0].day == day else None
    before = next((point for point in latest if point.day < day), None)
    previous_band = row.band if row is not None else (before.band if before else None)
    if row is None:
        row = HealthScore(
            account_id=account.id, day=day, at=at, score=score, band=band, scorecard=card.name, details=details
        )
        db.session.add(row)
    else:
        row.at, row.score, row.band, row.scorecard, row.details = max(row.at, at), score, band, card.name, details
    newer = db.session.scalar(
        select(HealthScore.id).where(HealthScore.account_id == account.id, HealthScore.day > day).limit(1)
    )
    if newer is not None:
        return None  # a late input: the history is corrected, the present is not this day
    account.score = score
    if previous_band is None or previous_band == band:
        return None
    return store_event(
        source="triage",
        external_id=f"band-{account.id}-{day.isoformat()}-{previous_band}-{band}",
        type="health.score_band_changed",
        account_id=account.id,
        occurred_at=at,
        payload={
            "id": f"band-{account.id}-{day.isoformat()}",
            "account_id": account.id,
            "type": "health.score_band_changed",
            "occurred_at": at.isoformat(),
            "properties": {"from": previous_band, "to": band, "score": score, "scorecard": card.name},
        },
    )


def recompute_all(at: datetime | None = None) -> dict:
    """The daily recompute: windows move on even when no event arrives (a silent account's
    usage falls to nothing). One transaction per account, band changes enqueued after."""
    from app.accounts import lock_account
    from app.jobs import enqueue_process_events
    from app.models.types import utcnow
    from app.signals.metrics import metrics_for

    at = at or utcnow()
    from app.models.usage import DailyUsage

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
        change = recompute(account, at, metrics_for(account_id, at))
        db.session.commit()
        if change is not None:
            changes.append(change.id)
    enqueue_process_events(changes)
    return {"accounts": len(account_ids), "band_changes": len(changes)}
