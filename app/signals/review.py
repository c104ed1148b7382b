"""When the numbers and the CSM disagree for a while, ask the CSM to look again.

The CRM status stays the CSM's judgement. When the computed band has differed from it
for HEALTH_REVIEW_AFTER_DAYS (counted from the later of the status change and the first
disagreeing score), the `health-review` playbook gives the CSM a task with both sides'
reasons. One open review per account at a time (the runner sees to that).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app import catalog
from app.extensions import db
from app.models import Account
from app.models.score import HealthScore
from app.models.types import utcnow
from app.playbooks.runner import launch

PLAYBOOK = "health-review"


def review_disagreements(now: datetime | None = None) -> dict:
    now = now or utcnow()
    wait = timedelta(days=current_app.config["HEALTH_REVIEW_AFTER_DAYS"])
    playbook = catalog.current().playbooks.get(PLAYBOOK)
    launched = 0
    accounts = db.session.execute(
        select(Account).where(
            Account.score.is_not(None), Account.health_status.is_not(None), Account.erased_at.is_(None)
        )
    ).scalars()
    for account in accounts:
        since = disagreeing_since(account)
        if since is None or now - since < wait or playbook is None:
            continue
        latest = db.session.execute(
            select(HealthScore).where(HealthScore.account_id == account.id).order_by(HealthScore.day.desc()).limit(1)
        ).scalar_one()
        run = launch(
            playbook,
            account,
            params={
                "crm_status": account.health_status,
                "crm_reason": account.health_reason or "(no reason given)",
                "band": latest.band,
                "score": latest.score,
                "since": since.date().isoformat(),
                "indicators": _weakest(latest.details),
            },
        )
        if run is not None:
            launched += 1
    db.session.commit()
    return {"launched": launched}


def disagreeing_since(account: Account) -> datetime | None:
    """When the current disagreement began, or None if the latest band agrees."""
    points = db.session.execute(
        select(HealthScore.day, HealthScore.band, HealthScore.at)
        .where(HealthScore.account_id == account.id)
        .order_by(HealthScore.day.desc())
        .limit(400)
    ).all()
    if not points or points[0].band == account.health_status:
        return None
    start = points[0].at
    for point in points:
        if point.band == account.health_status:
            break
        start = point.at
    return max(start, account.health_since) if account.health_since else start


def _weakest(details: dict) -> list[str]:
    """The three indicators that pull the score down most, as lines a CSM can read."""
    scored = [
        (info["points"], name, info["value"])
        for name, info in (details or {}).items()
        if info.get("points") is not None
    ]
    return [f"{name.replace('_', ' ')}: {value} ({points:.0f}/100)" for points, name, value in sorted(scored)[:3]]
