"""Concurrent deliveries of the same thing store it once and process it once."""

from __future__ import annotations

import json
import threading

from sqlalchemy import func, select

from app.models import Event, PlaybookRun
from tests.helpers import health_webhook, signed_headers


def in_threads(count: int, target) -> list:
    results, barrier = [None] * count, threading.Barrier(count)

    def run(index):
        barrier.wait()  # all at once
        results[index] = target()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_same_webhook_five_times_at_once_is_one_event_and_one_run(app, db, run_jobs):
    body = json.dumps(health_webhook(to="red")).encode()
    headers = signed_headers(body, msg_id="msg_concurrent")

    def deliver():
        response = app.test_client().post("/webhooks/crm", data=body, headers=headers)
        return response.status_code, response.get_json()

    results = in_threads(5, deliver)
    assert [status for status, _ in results] == [202] * 5
    assert sum(answer["accepted"] for _, answer in results) == 1
    assert sum(answer["duplicates"] for _, answer in results) == 4
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1
    assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == 1


def test_overlapping_event_batches_at_once_store_each_event_once(app, db, auth, run_jobs):
    events = [
        {
            "id": f"e{i}",
            "account_id": f"a{i % 7}",
            "type": "billing.invoice_overdue",
            "occurred_at": "2026-11-20T00:00:00Z",
            "properties": {"days": i},
        }
        for i in range(300)
    ]
    batches = [events[0:200], events[100:300], events[50:250]]
    lock = threading.Lock()

    def deliver():
        with lock:
            batch = batches.pop()
        return app.test_client().post("/api/v1/events", json=batch, headers=auth).get_json()

    answers = in_threads(3, deliver)
    assert sum(a["accepted"] for a in answers) == 300
    assert sum(a["duplicates"] for a in answers) == 300
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(Event)) == 300
    assert db.session.scalar(select(func.count()).select_from(Event).where(Event.processed_at.is_(None))) == 0
