"""Event files as CS ops export them: JSON lines or CSV (`flask replay`, `--history`).

JSON lines: one CONTRACT section 3 event per line. CSV: the columns id, account_id, type,
occurred_at, and either `properties` (a JSON object) or one column per property (numbers
are read as numbers).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import click


def read_events(path: Path) -> Iterator[dict]:
    """The events of the file; a row that is not an event stops the replay with its line."""
    for number, item, problem in read_numbered(path):
        if problem or item is None:
            raise click.ClickException(f"{path}:{number}: {problem}")
        yield item


def read_numbered(path: Path) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, event, None), or (line number, None, what is wrong) for a row that cannot
    be read as an event. CSV lines count from the header (line 1), as a spreadsheet shows them."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                try:
                    yield reader.line_num, _from_csv(row), None
                except (json.JSONDecodeError, TypeError) as exc:
                    yield reader.line_num, None, f"the properties column is not a JSON object ({exc})"
    else:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        yield number, json.loads(line), None
                    except json.JSONDecodeError as exc:
                        yield number, None, f"not JSON ({exc.msg})"


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
