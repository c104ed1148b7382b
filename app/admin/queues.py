"""Queues: what the workers have to do, what runs now, what waits for its time, what
failed (with the traceback, Retry and Delete), and the outbox backlog (events not yet processed).

A small own page rather than rq-dashboard: it sits behind the admin's sign-in and
CSRF like every other page, and needs nothing beyond RQ's registries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from rq import Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from app.admin.access import OPERATORS
from app.admin.views import AdminView
from app.extensions import db
from app.jobs import ALL, queue
from app.models import Event
from app.redis_conn import get_redis

log = logging.getLogger(__name__)
FAILED_SHOWN = 50  # newest failed jobs listed per queue
LISTED = 20  # started and scheduled jobs listed per queue


@dataclass
class FailedJob:
    id: str
    func_name: str | None
    description: str
    ended_at: datetime | None
    exc_string: str


@dataclass
class JobRow:
    id: str
    func_name: str | None
    description: str
    at: datetime | None  # started at, or scheduled for
    worker: str | None = None


@dataclass
class QueueState:
    name: str
    queued: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    failed_jobs: list[FailedJob] = field(default_factory=list)
    started_jobs: list[JobRow] = field(default_factory=list)
    scheduled_jobs: list[JobRow] = field(default_factory=list)


def _names(job: Job) -> tuple[str | None, str]:
    try:
        return job.func_name, job.description or ""
    except Exception:  # an unreadable payload still deserves a row
        return "(unreadable)", ""


def _started_jobs(registry) -> list[JobRow]:
    ids = registry.get_job_ids(0, LISTED - 1)
    rows = []
    for job in Job.fetch_many(ids, connection=registry.connection):
        if job is not None:  # finished between the two reads
            rows.append(JobRow(job.id, *_names(job), at=job.started_at, worker=job.worker_name))
    return rows


def _scheduled_jobs(registry) -> list[JobRow]:
    """The next LISTED jobs by their time (the registry is a sorted set scored by it)."""
    entries = registry.connection.zrange(registry.key, 0, LISTED - 1, withscores=True)
    ids = [entry.decode() for entry, _ in entries]
    rows = []
    for (_, score), job in zip(entries, Job.fetch_many(ids, connection=registry.connection), strict=False):
        if job is not None:
            rows.append(JobRow(job.id, *_names(job), at=datetime.fromtimestamp(score, UTC)))
    return rows


def _failed_jobs(registry: FailedJobRegistry) -> list[FailedJob]:
    ids = registry.get_job_ids(0, FAILED_SHOWN - 1, desc=True)
    jobs = Job.fetch_many(ids, connection=registry.connection)
    shown = []
    for job_id, job in zip(ids, jobs, strict=False):
        if job is None:  # expired between the two reads
            continue
        func_name, description = _names(job)
        result = job.latest_result()
        shown.append(
            FailedJob(
                id=job_id,
                func_name=func_name,
                description=description,
                ended_at=job.ended_at,
                exc_string=(result.exc_string if result is not None else None) or "",
            )
        )
    return shown


def queue_states() -> list[QueueState]:
    states = []
    for name in ALL:
        q = queue(name)
        failed = q.failed_job_registry
        states.append(
            QueueState(
                name=name,
                queued=q.count,
                started=q.started_job_registry.count,
                scheduled=q.scheduled_job_registry.count,
                deferred=q.deferred_job_registry.count,
                failed=failed.count,
                failed_jobs=_failed_jobs(failed),
                started_jobs=_started_jobs(q.started_job_registry),
                scheduled_jobs=_scheduled_jobs(q.scheduled_job_registry),
            )
        )
    return states


class QueuesView(AdminView):
    roles = OPERATORS

    @expose("/")
    def index(self) -> str:
        count, oldest = db.session.execute(
            select(func.count(Event.id), func.min(Event.received_at)).where(Event.processed_at.is_(None))
        ).one()
        age = (datetime.now(UTC) - oldest) if oldest is not None else None
        states, workers, redis_error = [], [], None
        try:
            states = queue_states()
            workers = sorted(Worker.all(connection=get_redis()), key=lambda w: w.name)
        except redis.RedisError as exc:
            log.warning("queues page: Redis unavailable: %s", exc)
            redis_error = str(exc) or exc.__class__.__name__
        return self.render(
            "triage_admin/queues.html",
            states=states,
            workers=workers,
            redis_error=redis_error,
            outbox_count=count,
            outbox_oldest=oldest,
            outbox_age=age,
        )

    def _registry(self) -> FailedJobRegistry:
        name = request.form.get("queue", "")
        if name not in ALL:
            abort(400, f"unknown queue {name!r}")
        return FailedJobRegistry(queue=queue(name))

    @expose("/retry", methods=["POST"])
    def retry(self) -> Response:
        registry = self._registry()
        job_ids = request.form.getlist("job_id") or registry.get_job_ids()
        retried = 0
        for job_id in job_ids:
            try:
                registry.requeue(job_id)
                retried += 1
            except (InvalidJobOperation, NoSuchJobError):
                flash(f"Job {job_id} is no longer in the failed list.", "warning")
        if retried:
            flash(f"{retried} job(s) put back on queue “{registry.name}”.", "success")
        return redirect(url_for(".index"))

    @expose("/delete", methods=["POST"])
    def delete(self) -> Response:
        registry = self._registry()
        job_id = request.form.get("job_id", "")
        if not job_id:
            abort(400, "job_id required")
        if job_id not in registry:  # only failed jobs are deleted from here
            flash(f"Job {job_id} is no longer in the failed list.", "warning")
            return redirect(url_for(".index"))
        try:
            registry.remove(job_id, delete_job=True)
        except NoSuchJobError:
            registry.remove(job_id)  # the job's data had expired: drop the dangling id
        flash(f"Job {job_id} deleted.", "success")
        return redirect(url_for(".index"))
