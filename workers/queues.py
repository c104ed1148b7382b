"""Queue names and the one place jobs are enqueued from."""
from __future__ import annotations

from flask import current_app
from rq import Queue, Retry

from app.redis_conn import get_redis

EVENTS = "events"  # incoming events: match rules, launch playbooks
STEPS = "steps"  # automated playbook steps (mail, webhooks, off-boarding)
MAINTENANCE = "maintenance"  # periodic jobs: outbox sweep, overdue checks
# The order a worker takes work in: a playbook's next step before the next event, so a run
# already under way (a mail, then a task) is not held up behind a backlog of new events.
ALL = (STEPS, EVENTS, MAINTENANCE)


def queue(name: str, app=None) -> Queue:
    return Queue(name, connection=get_redis(app or current_app))


def retry_policy(setting: str) -> Retry:
    """Retry with backoff; the intervals (seconds) are settings, so tests can use zeros."""
    intervals = current_app.config[setting]
    return Retry(max=len(intervals), interval=list(intervals))
