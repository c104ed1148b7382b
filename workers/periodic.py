"""Periodic jobs, declared as data in one place. `workers/scheduler.py` runs them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

from app.jobs import MAINTENANCE
from workers import maintenance


class PeriodicJob(TypedDict):
    func: Callable[[], object]  # a job of workers/maintenance.py, called without arguments
    interval: int  # seconds
    queue: str
    name: str


PERIODIC: list[PeriodicJob] = [
    # Enqueue events and steps whose job a Redis outage or restart lost.
    {"func": maintenance.sweep, "interval": 15, "queue": MAINTENANCE, "name": "sweep"},
    # Retry (or fail visibly) steps whose worker died mid-step (no live lease).
    {"func": maintenance.recover_lost_steps, "interval": 30, "queue": MAINTENANCE, "name": "recover-lost-steps"},
    # Task SLAs: wake snoozed tasks, flag overdue ones (remind, `task.overdue` event), escalate.
    {"func": maintenance.check_tasks, "interval": 60, "queue": MAINTENANCE, "name": "task-sla"},
    # GDPR off-boarding: warn before and after the one-month deadline.
    {"func": maintenance.check_gdpr_deadlines, "interval": 3600, "queue": MAINTENANCE, "name": "gdpr-deadlines"},
    # Scheduled rules (`on: schedule`): the monthly check-in, N days before the renewal.
    {"func": maintenance.run_due_schedules, "interval": 3600, "queue": MAINTENANCE, "name": "scheduled-rules"},
    # Health scores move on daily even for accounts that went silent; then CRM-vs-score reviews.
    {"func": maintenance.recompute_scores, "interval": 86400, "queue": MAINTENANCE, "name": "recompute-scores"},
    # The executive dashboard's figures for everyone and each manager's team, so a page view only reads them.
    {"func": maintenance.warm_dashboards, "interval": 60, "queue": MAINTENANCE, "name": "warm-dashboards"},
    {
        "func": maintenance.review_health_statuses,
        "interval": 86400,
        "queue": MAINTENANCE,
        "name": "review-health-statuses",
    },
]
