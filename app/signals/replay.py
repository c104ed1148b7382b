"""`flask replay FILE`: a history of events through the normal intake, at full speed.

Batches of 1,000 go through `POST /api/v1/events` in-process, so validation, idempotency
and storage are exactly those of the API; the running workers process them (or `--process`
does it here), rules and playbooks included. To load a year of history without acting on
the past, `--history` (app/signals/history.py). The file formats: app/signals/event_files.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app

from app.signals.event_files import read_events

BATCH = 1000


def replay(path: Path, process: bool = False) -> dict:
    client = current_app.test_client()
    headers = {"Authorization": f"Bearer {current_app.config['API_TOKENS'][0]}"}
    totals = {"accepted": 0, "duplicates": 0}
    events = list(read_events(path))
    with click.progressbar(length=len(events), label=f"replaying {path.name}") as bar:
        for start in range(0, len(events), BATCH):
            batch = events[start : start + BATCH]
            response = client.post("/api/v1/events", json=batch, headers=headers)
            if response.status_code != 202:
                raise click.ClickException(
                    f"events {start}..{start + len(batch) - 1} refused ({response.status_code}): "
                    f"{json.dumps(response.get_json())[:2000]}"
                )
            for key in totals:
                totals[key] += response.get_json()[key]
            bar.update(len(batch))
            if process:
                work()
    return totals


def work() -> None:
    from app.jobs import work_queued_jobs

    work_queued_jobs()
