"""Steps lost with their worker: `running` in the database, but no live lease in Redis.

RQ notices a dead work horse only in a live worker's maintenance pass (about every ten
minutes), and not at all when the whole machine went. This periodic job looks at the
steps themselves: one whose lease expired is retried (a new job, same id `step-<id>`)
while it has attempts left, else failed visibly and put in RQ's failed registry, where
the admin's Retry button finds it. Actions are safe to run twice, so a retry of a step
that had got half-way is harmless.
"""

from __future__ import annotations

import logging

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.jobs import enqueue_step_jobs, forget_started, record_failed_step_job, step_job_id
from app.models import PlaybookRun, RunStep
from app.models.types import utcnow
from app.playbooks.leases import is_held
from app.redis_conn import get_redis

log = logging.getLogger(__name__)


def recover_lost_steps() -> dict:
    """Retry or fail every `running` step whose worker is gone."""
    connection = get_redis()
    candidates = db.session.execute(select(RunStep.id).where(RunStep.status == "running")).scalars().all()
    db.session.rollback()
    max_attempts = 1 + len(current_app.config["STEP_RETRY_INTERVALS"])
    retried, failed = [], []
    for step_id in candidates:
        if is_held(connection, step_id):
            continue
        step = db.session.execute(select(RunStep).where(RunStep.id == step_id).with_for_update()).scalar_one()
        # The lease is taken before `running` commits, so no live worker is between the two.
        if step.status != "running" or is_held(connection, step_id):
            db.session.rollback()
            continue
        note = f"the worker running attempt {step.attempts} stopped (killed or lost) before the step ended"
        if step.attempts < max_attempts:
            step.status, step.error, step.enqueued_at = "queued", note, utcnow()
            retried.append(step_id)
        else:
            step.status, step.error, step.finished_at = "failed", note, utcnow()
            run = db.session.get(PlaybookRun, step.run_id)
            assert run is not None  # step.run_id is a foreign key
            run.status, run.status_note, run.finished_at = "failed", f"step {step.name}: {note}", utcnow()
            failed.append((step_id, note))
        db.session.commit()

    for step_id in retried:
        forget_started(step_job_id(step_id))
    enqueue_step_jobs(retried)
    for step_id, note in failed:
        record_failed_step_job(step_id, note)
    if retried or failed:
        log.warning("lost steps: %d retried, %d failed", len(retried), len(failed))
    return {"retried": retried, "failed": [step_id for step_id, _ in failed]}
