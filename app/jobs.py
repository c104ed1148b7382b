"""The job port: the one place the core hands work to the workers.

The core never imports `workers/`: it enqueues jobs by their dotted name (RQ resolves a
function given as a string when a worker runs the job), so the import graph goes one way,
workers -> core. This module owns the queue names, the job ids (`event-<id>`, `step-<id>`:
a second enqueue of the same work finds the first), the retry policies, and the
after-commit hook that enqueues automated steps only once their rows exist.

The job functions themselves are thin shells in `workers/` (an app context around a core
function); their names below must match them (tests/system/test_layers.py checks that each
resolves).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from rq import Queue, Retry, SimpleWorker
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

from app.redis_conn import get_redis

log = logging.getLogger(__name__)

EVENTS = "events"  # incoming events: match rules, launch playbooks
STEPS = "steps"  # automated playbook steps (mail, webhooks, off-boarding)
MAINTENANCE = "maintenance"  # periodic jobs: outbox sweep, overdue checks
# The order a worker takes work in: a playbook's next step before the next event, so a run
# already under way (a mail, then a task) is not held up behind a backlog of new events.
ALL = (STEPS, EVENTS, MAINTENANCE)
# A job in one of these states will still run: enqueueing the same work again would double it.
ALIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
FAILURE_TTL = 30 * 86400  # a failed job stays a month in the failed registry, for a person to retry
DEFAULT_STEP_TIMEOUT = 600

# The job functions, by dotted name (workers/ defines them).
PROCESS_EVENT = "workers.events.process_event"
PROCESS_EVENTS = "workers.events.process_events"
RUN_STEP = "workers.jobs.run_step"
REFRESH_DASHBOARD = "workers.maintenance.refresh_dashboard"
VALIDATE_SCORECARDS = "workers.maintenance.validate_scorecards"
JOB_FUNCTIONS = (PROCESS_EVENT, PROCESS_EVENTS, RUN_STEP, REFRESH_DASHBOARD, VALIDATE_SCORECARDS)


def queue(name: str, app: Flask | None = None) -> Queue:
    return Queue(name, connection=get_redis(app or current_app))


def retry_policy(setting: str) -> Retry:
    """Retry with backoff; the intervals (seconds) are settings, so tests can use zeros."""
    intervals = current_app.config[setting]
    return Retry(max=len(intervals), interval=list(intervals))


def event_job_id(event_id: int) -> str:
    return f"event-{event_id}"


def step_job_id(step_id: int) -> str:
    return f"step-{step_id}"


def is_alive(job_id: str) -> bool:
    """True while a job of this id is queued, running or scheduled in Redis."""
    try:
        status = Job.fetch(job_id, connection=get_redis()).get_status(refresh=False)
    except Exception:  # NoSuchJobError: gone from Redis
        return False
    return status in ALIVE


# ---- events ------------------------------------------------------------------------------


def enqueue_process_events(event_ids: list[int]) -> None:
    """One job for one event; one job per batch for a batch (the events API's 1,000)."""
    if not event_ids:
        return
    options = dict(retry=retry_policy("EVENT_RETRY_INTERVALS"), result_ttl=3600, failure_ttl=FAILURE_TTL)
    if len(event_ids) == 1:
        queue(EVENTS).enqueue(
            PROCESS_EVENT, event_ids[0], job_id=event_job_id(event_ids[0]), job_timeout=120, **options
        )
    else:
        queue(EVENTS).enqueue(
            PROCESS_EVENTS,
            list(event_ids),
            job_id=f"events-{event_ids[0]}-{event_ids[-1]}",
            job_timeout=600,
            **options,
        )


def enqueue_events(event_ids: list[int]) -> None:
    """Hand committed events to the workers. A failure here loses nothing: the sweeper
    (app/sweeper.py) enqueues whatever is still unprocessed."""
    if not event_ids:
        return
    try:
        enqueue_process_events(event_ids)
    except Exception as exc:  # Redis down: the sweeper takes over
        log.warning("could not enqueue %d event(s) now (%s); the sweeper will", len(event_ids), exc)


# ---- automated steps ---------------------------------------------------------------------


def enqueue_step_jobs(step_ids: list[int], timeouts: dict[int, int] | None = None) -> None:
    """One job per step (id `step-<id>`), retried with backoff; `timeouts` in seconds per step."""
    if not step_ids:
        return
    q = queue(STEPS)
    q.enqueue_many(
        [
            q.prepare_data(
                RUN_STEP,
                args=(step_id,),
                job_id=step_job_id(step_id),
                retry=retry_policy("STEP_RETRY_INTERVALS"),
                timeout=(timeouts or {}).get(step_id) or DEFAULT_STEP_TIMEOUT,
                result_ttl=3600,
                failure_ttl=FAILURE_TTL,
            )
            for step_id in step_ids
        ]
    )


def enqueue_step_wake(step_id: int, until: datetime) -> None:
    """Run a waiting step again at `until` (RQ's scheduler, in every worker)."""
    queue(STEPS).enqueue_at(
        until,
        RUN_STEP,
        step_id,
        job_id=f"{step_job_id(step_id)}-wake-{int(until.timestamp())}",
        retry=retry_policy("STEP_RETRY_INTERVALS"),
        failure_ttl=FAILURE_TTL,
    )


def record_failed_step_job(step_id: int, note: str) -> None:
    """Put a step that failed outside any job (its worker died) in the failed registry, where
    the Queues page's Retry button finds it."""
    q = queue(STEPS)
    forget_started(step_job_id(step_id))
    job = q.create_job(RUN_STEP, args=(step_id,), job_id=step_job_id(step_id), failure_ttl=FAILURE_TTL)
    FailedJobRegistry(queue=q).add(job, ttl=FAILURE_TTL, exc_string=note)
    job.set_status(JobStatus.FAILED)


def forget_started(job_id: str) -> None:
    """Drop a dead execution from RQ's started registry, so RQ's own cleanup does not act on it too."""
    try:
        job = Job.fetch(job_id, connection=get_redis())
        StartedJobRegistry(queue=queue(STEPS)).remove_executions(job)
    except Exception:  # already gone from Redis
        pass


# ---- after commit ------------------------------------------------------------------------
# A job enqueued before commit could run before its rows exist, or for rows that a rollback
# then removes. Code that starts automated work calls `after_commit(...)`; the session hook
# enqueues on commit and forgets on rollback. If Redis is down at that moment nothing is
# lost: the sweeper finds queued steps never enqueued.

AFTER_COMMIT_KEY = "triage_after_commit"


def after_commit(session: Session | scoped_session[Any], kind: str, ident: int, timeout: int | None = None) -> None:
    """Enqueue job `kind` for `ident` once the session commits; `timeout` in seconds (None: default)."""
    session.info.setdefault(AFTER_COMMIT_KEY, []).append((kind, ident, timeout))


@event.listens_for(Session, "after_commit")
def _enqueue_after_commit(session: Session) -> None:
    pending = session.info.pop(AFTER_COMMIT_KEY, [])
    if not pending:
        return
    step_ids = [ident for kind, ident, _ in pending if kind == "step"]
    timeouts = {ident: timeout for kind, ident, timeout in pending if kind == "step" and timeout}
    try:
        enqueue_step_jobs(step_ids, timeouts)
    except Exception as exc:  # Redis down: the sweeper enqueues them later
        log.warning("could not enqueue %d step(s) now (%s); the sweeper will", len(step_ids), exc)


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(AFTER_COMMIT_KEY, None)


# ---- dashboards and in-process work ------------------------------------------------------


def enqueue_dashboard_refresh(scope: str) -> None:
    queue(MAINTENANCE).enqueue(REFRESH_DASHBOARD, scope, job_timeout=300, result_ttl=60)


def enqueue_validation() -> bool:
    """The scorecards' validation report, asked for on the admin's Score quality page. One at a
    time (id `validate-scorecards`): False when one is already queued or running. A new run
    supersedes a failed one (which would otherwise stay listed as failed under the same id)."""
    job_id = "validate-scorecards"
    if is_alive(job_id):
        return False
    q = queue(MAINTENANCE)
    q.failed_job_registry.remove(job_id)
    q.enqueue(VALIDATE_SCORECARDS, job_id=job_id, job_timeout=3600, result_ttl=86400, failure_ttl=FAILURE_TTL)
    return True


def work_queued_jobs() -> None:
    """Run every queued job here and now, then return (the demo's first start, `replay
    --process`): the same RQ worker class the worker process uses, in burst mode."""
    SimpleWorker([queue(name) for name in ALL], connection=get_redis()).work(burst=True, logging_level="WARNING")
