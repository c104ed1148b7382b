"""The maintenance queue's jobs: an app context around a core function each, nothing else.

The scheduler enqueues the periodic ones (workers/periodic.py); `refresh_dashboard` is
enqueued by a page that found its figures stale, `validate_scorecards` by the Score quality
page's button (app/jobs.py).
"""

from __future__ import annotations

from app import sweeper
from app.admin import dashboard_snapshot, score_quality
from app.matching import scheduled_rules
from app.playbooks import recovery, sla
from app.signals import review, scores, validation
from workers.context import with_app


@with_app
def sweep(grace_seconds: int | None = None) -> dict:
    """Enqueue events and steps whose job a Redis outage or restart lost."""
    return sweeper.sweep(grace_seconds)


@with_app
def recover_lost_steps() -> dict:
    """Retry (or fail visibly) steps whose worker died mid-step."""
    return recovery.recover_lost_steps()


@with_app
def check_tasks(now: str | None = None) -> dict:
    """Task SLAs: wake snoozed tasks, flag overdue ones, escalate."""
    return sla.check_tasks(now)


@with_app
def check_gdpr_deadlines(now: str | None = None) -> dict:
    """Warn before and after an off-boarding run's one-month deadline."""
    return sla.check_gdpr_deadlines(now)


@with_app
def run_due_schedules() -> dict:
    """Scheduled rules (`on: schedule`) whose period came."""
    return scheduled_rules.run_due_schedules()


@with_app
def recompute_scores() -> dict:
    """Move every usage-sending account's score on to today (windows move without events)."""
    return scores.recompute_all()


@with_app
def review_health_statuses() -> dict:
    """Ask CSMs to review statuses the numbers have disagreed with for a while."""
    return review.review_disagreements()


@with_app
def warm_dashboards() -> list[str]:
    """The dashboard's figures for everyone and each manager's team."""
    return dashboard_snapshot.refresh()


@with_app
def refresh_dashboard(scope: str) -> list[str]:
    """One scope's figures, asked for by a page that found them stale."""
    return dashboard_snapshot.refresh(scope)


@with_app
def validate_scorecards() -> dict:
    """The scorecards' validation report, into the instance folder (where the admin reads it)."""
    return validation.run_and_write(score_quality.report_folder())
