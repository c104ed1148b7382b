"""The jobs: plain functions taking ids, safe to run twice.

- process_event(s) (in workers/events.py, re-exported): apply inbound events, match rules, launch runs.
- run_step(step_id): carry out one automated playbook step.
- sweep(): re-enqueue what a Redis outage or restart left behind (unprocessed events, steps, waits).
"""
from __future__ import annotations

import logging
from datetime import timedelta

from rq import get_current_job
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import select, update

from app import catalog
from app.extensions import db
from app.models import Account, Event, PlaybookRun, RunStep
from app.models.types import utcnow
from app.playbooks.actions import registry
from app.playbooks.actions.context import ActionContext, ActionWait
from app.playbooks.runner import advance, template_context
from app.playbooks.templating import render_params
from app.redis_conn import get_redis
from workers.context import with_app
from workers.leases import StepLease
from workers.events import enqueue_process_events, event_job_id, process_event  # noqa: F401 (re-exported)
from workers.queues import EVENTS, STEPS, queue, retry_policy

log = logging.getLogger(__name__)
# An event whose job keeps failing stays in the failed-job registry for a person to retry.
MAX_SWEEPS = 5
ALIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
DEFAULT_STEP_TIMEOUT = 600


def step_job_id(step_id: int) -> str:
    return f"step-{step_id}"


# ---- enqueueing -------------------------------------------------------------------------

def enqueue_step_jobs(step_ids: list[int], timeouts: dict[int, int] | None = None) -> None:
    """One job per step (id `step-<id>`), retried with backoff; `timeouts` in seconds per step."""
    if not step_ids:
        return
    q = queue(STEPS)
    q.enqueue_many([
        q.prepare_data(run_step, args=(step_id,), job_id=step_job_id(step_id), retry=retry_policy("STEP_RETRY_INTERVALS"),
                       timeout=(timeouts or {}).get(step_id) or DEFAULT_STEP_TIMEOUT, result_ttl=3600,
                       failure_ttl=30 * 86400)
        for step_id in step_ids
    ])


# ---- automated steps --------------------------------------------------------------------

@with_app
def run_step(step_id: int) -> str:
    step = db.session.execute(select(RunStep).where(RunStep.id == step_id).with_for_update()).scalar_one_or_none()
    if step is None or step.status not in ("queued", "running", "failed"):
        db.session.rollback()
        return f"nothing to do ({step.status if step else 'no such step'})"
    run = db.session.get(PlaybookRun, step.run_id)
    if run.status not in ("running", "waiting", "failed"):
        db.session.rollback()
        return f"run is {run.status}"
    if step.wake_at and step.wake_at > utcnow():
        db.session.rollback()
        return f"waiting until {step.wake_at.isoformat()}"
    account = db.session.get(Account, run.account_id)
    playbook = catalog.current().playbooks[run.playbook]
    spec = playbook.step(step.name)
    action = registry.get(spec.action)
    # The lease says "a live worker runs this step": one holder at a time, renewed while the
    # action runs; a step `running` without one was lost with its worker (workers/recovery.py).
    lease = StepLease(step_id)
    if not lease.acquire():
        db.session.rollback()
        return "running in another worker"
    try:
        step.status, step.attempts, step.error = "running", step.attempts + 1, None
        if run.status == "failed":  # retried from the admin: the run lives again
            run.status, run.status_note, run.finished_at = "running", None, None
        db.session.commit()
        return _run_action(step, run, account, playbook, spec, action)
    finally:
        lease.release()


def _run_action(step, run, account, playbook, spec, action) -> str:
    step_id = step.id
    try:
        context = template_context(run, account)
        params = render_params(dict(spec.params), context)
        result = action.run(ActionContext(step=step, run=run, account=account, params=params,
                                          template_context=context))
    except Exception as exc:
        db.session.rollback()
        _record_failure(step_id, exc)
        raise
    if isinstance(result, ActionWait):
        step.status, step.wake_at = "queued", result.until
        step.result = {"waiting_until": result.until.isoformat()}
        advance(run, playbook, account)
        db.session.commit()
        queue(STEPS).enqueue_at(result.until, run_step, step_id,
                                job_id=f"{step_job_id(step_id)}-wake-{int(result.until.timestamp())}",
                                retry=retry_policy("STEP_RETRY_INTERVALS"), failure_ttl=30 * 86400)
        return f"waiting until {result.until.isoformat()}"
    step.status, step.result, step.finished_at, step.wake_at = "succeeded", result or {}, utcnow(), None
    advance(run, playbook, account)
    db.session.commit()
    return "succeeded"


def _record_failure(step_id: int, exc: Exception) -> None:
    """Note the error; on the last attempt the step and its run are failed, visibly."""
    job = get_current_job()
    will_retry = bool(job and job.retries_left)
    step = db.session.get(RunStep, step_id)
    step.error = f"{exc.__class__.__name__}: {exc}"[:2000]
    if will_retry:
        step.status = "queued"
    else:
        step.status, step.finished_at = "failed", utcnow()
        run = db.session.get(PlaybookRun, step.run_id)
        run.status, run.status_note, run.finished_at = "failed", f"step {step.name}: {step.error}", utcnow()
    db.session.commit()
    log.warning("step %s failed (attempt %s%s): %s", step_id, step.attempts,
                ", will retry" if will_retry else ", giving up", step.error)


# ---- the sweeper ------------------------------------------------------------------------

@with_app
def sweep(grace_seconds: int | None = None) -> dict:
    """Enqueue events and steps whose job is not in Redis (lost in an outage or a restart)."""
    from flask import current_app

    grace = timedelta(seconds=current_app.config["OUTBOX_RETRY_AFTER"] if grace_seconds is None else grace_seconds)
    cutoff = utcnow() - grace
    connection = get_redis()

    events_queue = queue(EVENTS)
    # While the event queue has work, unprocessed events are most likely in a queued batch job:
    # wait. Jobs lost with a Redis restart leave the queue empty, and are found then.
    busy = events_queue.count or StartedJobRegistry(queue=events_queue).count
    rows = [] if busy else db.session.execute(
        select(Event.id).where(Event.processed_at.is_(None), Event.received_at <= cutoff, Event.sweeps < MAX_SWEEPS)
        .order_by(Event.id).limit(5000)
    ).scalars().all()
    events = [event_id for event_id in rows if not _alive(connection, event_job_id(event_id))]
    if events:
        db.session.execute(update(Event).where(Event.id.in_(events)).values(sweeps=Event.sweeps + 1))
    db.session.commit()
    enqueue_process_events(events)

    now = utcnow()
    due = db.session.execute(
        select(RunStep.id, RunStep.wake_at).where(RunStep.status == "queued", RunStep.enqueued_at <= cutoff)
        .limit(5000)
    ).all()
    steps = [step_id for step_id, wake_at in due
             if (wake_at is None or wake_at <= now) and not _alive(connection, step_job_id(step_id))]
    enqueue_step_jobs(steps)
    db.session.rollback()
    if events or steps:
        log.info("sweeper enqueued %d event(s) and %d step(s)", len(events), len(steps))
    return {"events": len(events), "steps": len(steps)}


def _alive(connection, job_id: str) -> bool:
    try:
        status = Job.fetch(job_id, connection=connection).get_status(refresh=False)
    except Exception:  # NoSuchJobError: gone from Redis
        return False
    return status in ALIVE
