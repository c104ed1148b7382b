"""The sweeper: re-enqueue what a Redis outage or restart left behind.

The events table is its own outbox (an event without `processed_at` is unprocessed) and a
queued step row says its job should exist: whatever has no live job in Redis after a grace
period is enqueued again, an event at most MAX_SWEEPS times (after that it stays in the
failed jobs, for a person to retry). Run periodically by the scheduler (`workers.maintenance.sweep`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from rq.registry import StartedJobRegistry
from sqlalchemy import select, update

from app.extensions import db
from app.jobs import EVENTS, enqueue_process_events, enqueue_step_jobs, event_job_id, is_alive, queue, step_job_id
from app.models import Event, RunStep
from app.models.types import utcnow

log = logging.getLogger(__name__)
# An event whose job keeps failing stays in the failed-job registry for a person to retry.
MAX_SWEEPS = 5


def sweep(grace_seconds: int | None = None) -> dict:
    """Enqueue events and steps whose job is not in Redis (lost in an outage or a restart)."""
    grace = timedelta(seconds=current_app.config["OUTBOX_RETRY_AFTER"] if grace_seconds is None else grace_seconds)
    cutoff = utcnow() - grace

    events_queue = queue(EVENTS)
    # While the event queue has work, unprocessed events are most likely in a queued batch job:
    # wait. Jobs lost with a Redis restart leave the queue empty, and are found then.
    busy = events_queue.count or StartedJobRegistry(queue=events_queue).count
    rows = (
        []
        if busy
        else db.session.execute(
            select(Event.id)
            .where(Event.processed_at.is_(None), Event.received_at <= cutoff, Event.sweeps < MAX_SWEEPS)
            .order_by(Event.id)
            .limit(5000)
        )
        .scalars()
        .all()
    )
    events = [event_id for event_id in rows if not is_alive(event_job_id(event_id))]
    if events:
        db.session.execute(update(Event).where(Event.id.in_(events)).values(sweeps=Event.sweeps + 1))
    db.session.commit()
    enqueue_process_events(events)

    now = utcnow()
    due = db.session.execute(
        select(RunStep.id, RunStep.wake_at).where(RunStep.status == "queued", RunStep.enqueued_at <= cutoff).limit(5000)
    ).all()
    steps = [
        step_id
        for step_id, wake_at in due
        if (wake_at is None or wake_at <= now) and not is_alive(step_job_id(step_id))
    ]
    enqueue_step_jobs(steps)
    db.session.rollback()
    if events or steps:
        log.info("sweeper enqueued %d event(s) and %d step(s)", len(events), len(steps))
    return {"events": len(events), "steps": len(steps)}
