"""`flask replay FILE`: load a history of events through the normal intake, at full speed.

FILE is JSON lines (one CONTRACT section 3 event per line) or CSV with the columns
id, account_id, type, occurred_at, and either `properties` (a JSON object) or one
column per property (numbers are read as numbers). Batches of 1,000 go through
`POST /api/v1/events` in-process, so validation, idempotency and storage are exactly
those of the API; the running workers process them (or `--process` does it here).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import click
from flask import current_app

BATCH = 1000


def read_events(path: Path) -> Iterator[dict]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                yield _from_csv(row)
    else:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise click.ClickException(f"{path}:{number}: not JSON ({exc.msg})") from None


def _from_csv(row: dict) -> dict:
    event = {key: row.pop(key) for key in ("id", "account_id", "type", "occurred_at") if key in row}
    if row.get("properties"):
        event["properties"] = json.loads(row.pop("properties"))
    else:
        event["properties"] = {key: _number(value) for key, value in row.items() if value not in (None, "")}
    return event


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


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
                _work()
    return totals


def _work() -> None:
    from app.jobs import work_queued_jobs

    work_queued_jobs()


def init_app(app) -> None:
    @app.cli.command("replay")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--process", is_flag=True, help="process the events here too (no worker needed)")
    def replay_command(file: Path, process: bool) -> None:
        """Load a history of events (JSON lines or CSV) through the normal intake."""
        totals = replay(file, process)
        click.echo(f"{totals['accepted']} accepted, {totals['duplicates']} duplicates")
