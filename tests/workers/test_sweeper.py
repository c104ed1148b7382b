"""The sweeper and the outbox (unprocessed events), on the real database, Redis and RQ.

An event committed but never enqueued (Redis was down at the moment) is found and processed;
one whose job keeps failing is re-enqueued at most MAX_SWEEPS times, then left in the failed
jobs for a person to retry.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rq.registry import FailedJobRegistry

from app.intake.store import store_event
from app.jobs import EVENTS, event_job_id, queue
from app.models import Event
from app.sweeper import MAX_SWEEPS
from tests.helpers import health_webhook, unprocessed
from workers.maintenance import sweep

AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def stored(db, key: str, payload: dict) -> Event:
    """Committed and never enqueued: what a Redis outage at the web's enqueue leaves."""
    event = store_event(
        source="crm", external_id=key, type="account.health_changed", account_id="acme", occurred_at=AT, payload=payload
    )
    db.session.commit()
    return event


def test_an_event_never_enqueued_is_swept_once_and_processed(db, run_jobs):
    event = stored(db, "lost", health_webhook(to="red"))
    assert sweep(grace_seconds=0) == {"events": 1, "steps": 0}
    assert queue(EVENTS).get_job_ids() == [event_job_id(event.id)]
    assert sweep(grace_seconds=0)["events"] == 0  # queued: alive, not enqueued twice
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Event, event.id).processed_at is not None and unprocessed(db.session) == 0
    assert db.session.get(Event, event.id).sweeps == 1
    assert sweep(grace_seconds=0)["events"] == 0  # processed: nothing left to sweep


def test_an_event_whose_job_keeps_failing_is_swept_at_most_max_sweeps_times(db, run_jobs):
    broken = health_webhook(to="red")
    broken["health"] = {"to": "purple"}  # stored by a bug past validation: processing always raises
    event = stored(db, "broken", broken)
    for _ in range(MAX_SWEEPS):
        assert sweep(grace_seconds=0)["events"] == 1
        run_jobs()
    assert sweep(grace_seconds=0)["events"] == 0  # given up: a person decides now
    db.session.expire_all()
    kept = db.session.get(Event, event.id)
    assert (kept.processed_at, kept.sweeps) == (None, MAX_SWEEPS)
    assert unprocessed(db.session) == 1  # still visible as the backlog on the Queues page
    assert event_job_id(event.id) in FailedJobRegistry(queue=queue(EVENTS)).get_job_ids()  # and retryable


def test_a_failed_event_job_commits_nothing_even_when_the_worker_goes_on_with_another(db, run_jobs):
    """The in-process worker keeps its session between jobs: the failed job's transaction must
    not ride along with the next job's commit (it did, before workers/context.py rolled back)."""
    from app.intake.store import enqueue_events

    broken = health_webhook(to="red")
    broken["health"] = {"to": "purple"}
    bad, good = stored(db, "broken", broken), stored(db, "fine", health_webhook("globex", to="red"))
    enqueue_events([bad.id])
    enqueue_events([good.id])
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Event, good.id).processed_at is not None
    assert db.session.get(Event, bad.id).processed_at is None  # not claimed by someone else's commit
    assert FailedJobRegistry(queue=queue(EVENTS)).get_job_ids() == [event_job_id(bad.id)]
