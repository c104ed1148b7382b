"""The `process_event(s)` jobs: an app context around app/processing.py, nothing else.

Enqueued by app/jobs.py under these dotted names (`workers.events.process_event`, ...).
"""

from __future__ import annotations

from app.processing import process_batch, process_one
from workers.context import with_app


@with_app
def process_event(event_id: int) -> str:
    return process_one(event_id)


@with_app
def process_events(event_ids: list[int]) -> dict:
    return process_batch(event_ids)
