"""Loading a history of events set-based: `flask --app wsgi replay FILE --history`.

A year of exported usage is loaded as stored, processed events with their rollups, declared
series, first feature uses, and one health score per account and day (CONTRACT section 7),
in bulk: chunks of events inserted in one statement each, their account-days merged into the
rollups in one upsert, then every account scored over all its days at once (app/signals/frame.py).
Nothing is launched for the past: no rule runs, no playbook starts, no band change becomes an
event. The events of the file's last day are different: they are stored unprocessed and go
through the normal pipeline, so the rules see the present once the history is in
(`rules backtest` is the tool for the past).

Safe to interrupt and run again: each chunk is one transaction, an event already stored is a
duplicate (its id, as in the API) and is not rolled up twice, and scoring is recomputed.
A file with bad rows loads nothing (every bad row is reported with its line number) unless
told to skip them. Memory stays flat: the file is streamed twice (check, then load), and
only a chunk of events or a batch of accounts is held at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app import catalog
from app.extensions import db
from app.intake.event_validation import validate_event
from app.intake.store import store_events
from app.jobs import enqueue_events
from app.models import Account, Event
from app.models.score import HealthScore
from app.models.types import utcnow
from app.models.usage import DailyUsage, FeatureUse
from app.signals import bulk
from app.signals.event_files import read_numbered
from app.signals.frame import compute
from app.signals.indicators import MetricSet
from app.signals.metrics import builtin_metrics, read_frame
from app.signals.rollups import (
    COLUMNS,
    NEW_ROW,
    apply_columns,
    apply_series,
    note_latest,
    signal_properties,
    used_features,
)
from app.signals.scores import day_end

CHUNK = 20_000  # events per transaction
SCORE_BATCH = 200  # accounts scored per transaction
MAX_REPORTED = 50  # bad rows listed in the report (all are counted)


@dataclass
class BadRow:
    line: int
    problems: dict | str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problems}"


@dataclass
class FileCheck:
    rows: int = 0
    bad: list[BadRow] = field(default_factory=list)
    bad_count: int = 0
    bad_lines: set[int] = field(default_factory=set)  # all of them, for the second pass to skip
    accounts: set[str] = field(default_factory=set)
    first_day: date | None = None
    last_day: date | None = None


@dataclass
class LoadReport:
    rows: int = 0
    loaded: int = 0  # stored as processed history
    present: int = 0  # the last day's events, handed to the normal pipeline
    duplicates: int = 0
    skipped: int = 0  # bad rows left out (--skip-bad)
    accounts: int = 0
    account_days: int = 0  # rollup rows written
    scores: int = 0
    seconds: float = 0.0
    first_day: date | None = None
    last_day: date | None = None

    def summary(self) -> str:
        rate = self.account_days / self.seconds if self.seconds else 0
        return (
            f"{self.rows:,} rows: {self.loaded:,} events loaded as history, {self.present:,} of the last day "
            f"({self.last_day}) handed to the workers, {self.duplicates:,} duplicates, {self.skipped:,} bad rows "
            f"skipped; {self.accounts:,} accounts, {self.account_days:,} account-days, {self.scores:,} daily scores "
            f"from {self.first_day} in {self.seconds:.1f} s ({rate:,.0f} account-days/s)"
        )


class BadFile(Exception):
    def __init__(self, check: FileCheck, path: Path):
        self.check = check
        listed = "\n".join(f"{path}:{row}" for row in check.bad)
        more = check.bad_count - len(check.bad)
        super().__init__(
            f"{check.bad_count} bad row(s) of {check.rows}; nothing was loaded "
            f"(fix them, or load the rest with --skip-bad):\n{listed}" + (f"\n... and {more} more" if more > 0 else "")
        )


def check_file(path: Path) -> FileCheck:
    """The first pass: every row validated as the events API validates it, the accounts and days."""
    check = FileCheck()
    for line, item, problem in read_numbered(path):
        check.rows += 1
        data, errors = (None, problem) if problem else validate_event(item)
        if data is None:
            check.bad_count += 1
            check.bad_lines.add(line)
            if len(check.bad) < MAX_REPORTED:
                check.bad.append(BadRow(line, errors or "invalid"))
            continue
        check.accounts.add(data["account_id"])
        day = data["occurred_at"].date()
        check.first_day = day if check.first_day is None else min(check.first_day, day)
        check.last_day = day if check.last_day is None else max(check.last_day, day)
    return check


def load_history(
    path: Path, *, skip_bad: bool = False, chunk: int = CHUNK, progress: Callable[[int], None] | None = None
) -> LoadReport:
    """Load the file; BadFile (nothing loaded) when it has bad rows and `skip_bad` is not set."""
    started = time.monotonic()
    check = check_file(path)
    if check.bad_count and not skip_bad:
        raise BadFile(check, path)
    report = LoadReport(rows=check.rows, skipped=check.bad_count, first_day=check.first_day, last_day=check.last_day)
    metric_set = catalog.current().metrics
    for rows in _chunks(_valid_rows(path, check.bad_lines), chunk):
        _load_chunk(rows, check.last_day, metric_set, report)
        if progress:
            progress(len(rows))
    report.accounts = len(check.accounts)
    if check.last_day is not None:
        report.scores = score_accounts(sorted(check.accounts), check.last_day - timedelta(days=1), metric_set)
    report.seconds = time.monotonic() - started
    return report


def load_events(items: Iterable[dict], *, chunk: int = CHUNK) -> LoadReport:
    """Load events already in memory (CONTRACT section 3 dicts, valid) as history, all of
    them: the demo, and tests that need a past. Scores every day through the last one."""
    started = time.monotonic()
    report = LoadReport()
    metric_set = catalog.current().metrics
    accounts: set[str] = set()
    last: date | None = None
    for rows in _chunks(_validated(items), chunk):
        report.rows += len(rows)
        accounts.update(data["account_id"] for data, _ in rows)
        last = max([last or date.min] + [data["occurred_at"].date() for data, _ in rows])
        _load_chunk(rows, None, metric_set, report)
    report.accounts, report.last_day = len(accounts), last
    if last is not None:
        report.scores = score_accounts(sorted(accounts), last, metric_set)
    report.seconds = time.monotonic() - started
    return report


def _validated(items: Iterable[dict]) -> Iterator[tuple[dict, dict]]:
    for item in items:
        data, errors = validate_event(item)
        if data is None:
            raise ValueError(f"invalid event {item.get('id')!r}: {errors}")
        yield data, item


def _valid_rows(path: Path, bad_lines: set[int]) -> Iterator[tuple[dict, dict]]:
    """The second pass: the rows the first found valid, read without checking them again."""
    for line, item, problem in read_numbered(path):
        if problem or item is None or line in bad_lines:
            continue
        yield _checked(item), item


def _checked(item: dict) -> dict:
    """An event check_file validated, in validate_event's shape (its time in UTC)."""
    return {
        "id": item["id"],
        "account_id": item["account_id"],
        "type": item["type"],
        "occurred_at": datetime.fromisoformat(item["occurred_at"]).astimezone(UTC),
        "properties": item.get("properties", {}),
    }


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _load_chunk(
    rows: list[tuple[dict, dict]], last_day: date | None, metric_set: MetricSet, report: LoadReport
) -> None:
    """One transaction: the history's events stored as processed and rolled up; the last day's
    stored unprocessed and enqueued after the commit."""
    history = [(data, raw) for data, raw in rows if data["occurred_at"].date() != last_day]
    present = [(data, raw) for data, raw in rows if data["occurred_at"].date() == last_day]
    _ensure_accounts({data["account_id"] for data, _ in rows})
    new_ids = _insert_processed(history)
    fresh = [(data, raw) for data, raw in history if data["id"] in new_ids]
    report.duplicates += len(history) - len(fresh)
    report.loaded += len(fresh)
    report.account_days += _roll_up(fresh, metric_set)
    present_ids, duplicates = store_events("api", [_event_row(data, raw) for data, raw in present])
    report.present += len(present_ids)
    report.duplicates += duplicates
    db.session.commit()
    enqueue_events(present_ids)


def _insert(model):
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(model)


def _event_row(data: dict, raw: dict) -> dict:
    return {
        "external_id": data["id"],
        "type": data["type"],
        "account_id": data["account_id"],
        "occurred_at": data["occurred_at"],
        "payload": raw,
    }


def _ensure_accounts(account_ids: set[str]) -> None:
    if account_ids:
        db.session.execute(
            _insert(Account).on_conflict_do_nothing(index_elements=["id"]), [{"id": a} for a in sorted(account_ids)]
        )


def _insert_processed(rows: list[tuple[dict, dict]]) -> set[str]:
    """Store the events as already processed; the ids that were new (the others are duplicates)."""
    now = utcnow()
    values = [dict(_event_row(data, raw), source="api", received_at=now, processed_at=now) for data, raw in rows]
    return set(bulk.insert_new(_table(Event), values, ("source", "external_id"), "external_id"))


def _table(model) -> Table:
    return cast(Table, model.__table__)


def _roll_up(rows: list[tuple[dict, dict]], metric_set: MetricSet, series_only: bool = False) -> int:
    """The chunk's events into their account-days (merged with what is stored), first feature
    uses and the accounts' first day and newest values; the number of account-days written.
    `series_only`: the declared series alone (a rebuild: the fixed columns are already right)."""
    if not rows:
        return 0
    keys = {(data["account_id"], data["occurred_at"].date()) for data, _ in rows}
    days = _stored_days(keys)
    first_uses: dict[tuple[str, str], datetime] = {}
    for data, _raw in rows:
        account_id, at, event_type = data["account_id"], data["occurred_at"], data["type"]
        key = (account_id, at.date())
        row = days.get(key)
        if row is None:
            row = days[key] = {
                "account_id": account_id,
                "day": at.date(),
                **dict.fromkeys(COLUMNS),
                **dict(NEW_ROW, features={}),
                "values": {},
            }
        properties = signal_properties(event_type, data["properties"])
        if not series_only:
            apply_columns(row, event_type, properties)
        apply_series(row["values"], metric_set, event_type, properties, at.timestamp())
        for feature in [] if series_only else _features_of(event_type, properties):
            seen = first_uses.get((account_id, feature))
            if seen is None or at < seen:
                first_uses[(account_id, feature)] = at
    touched = [days[key] for key in keys]
    _upsert_days(touched)
    _upsert_first_uses(first_uses)
    _update_accounts(touched, metric_set)
    return len(touched)


def _features_of(event_type: str, properties: dict) -> list[str]:
    if event_type == "usage.daily" and isinstance(properties.get("features"), dict):
        return used_features(properties["features"])
    if event_type == "usage.feature_used" and properties.get("feature"):
        return [str(properties["feature"])]
    return []


def _stored_days(keys: set[tuple[str, date]]) -> dict[tuple[str, date], dict]:
    """The stored rollup rows of these account-days, as dicts of their columns and values."""
    found: dict[tuple[str, date], dict] = {}
    by_account: dict[str, list[date]] = {}
    for account_id, day in keys:
        by_account.setdefault(account_id, []).append(day)
    columns = [getattr(DailyUsage, name) for name in COLUMNS]
    accounts = sorted(by_account)
    for start in range(0, len(accounts), 500):
        part = accounts[start : start + 500]
        first = min(min(by_account[a]) for a in part)
        last = max(max(by_account[a]) for a in part)
        rows = db.session.execute(
            select(DailyUsage.account_id, DailyUsage.day, DailyUsage.values, *columns).where(
                DailyUsage.account_id.in_(part), DailyUsage.day >= first, DailyUsage.day <= last
            )
        ).all()
        for row in rows:
            if (row.account_id, row.day) in keys:
                found[(row.account_id, row.day)] = {
                    "account_id": row.account_id,
                    "day": row.day,
                    "values": dict(row.values or {}),
                    **{name: getattr(row, name) for name in COLUMNS},
                }
    return found


def _upsert_days(rows: list[dict]) -> None:
    bulk.upsert(_table(DailyUsage), rows, ("account_id", "day"), (*COLUMNS, "values"))


def _upsert_first_uses(first_uses: dict[tuple[str, str], datetime]) -> None:
    rows = [{"account_id": a, "feature": f[:200], "first_used_at": at} for (a, f), at in sorted(first_uses.items())]
    bulk.upsert(_table(FeatureUse), rows, ("account_id", "feature"), (), least="first_used_at")


def _update_accounts(rows: list[dict], metric_set: MetricSet) -> None:
    """Each account's first day with data and newest value per series, from the rows written."""
    by_account: dict[str, list[dict]] = {}
    for row in rows:
        by_account.setdefault(row["account_id"], []).append(row)
    stored = {
        account_id: (first_day, latest)
        for account_id, first_day, latest in db.session.execute(
            select(Account.id, Account.first_day, Account.signal_latest).where(Account.id.in_(sorted(by_account)))
        )
    }
    updates = []
    for account_id, account_rows in by_account.items():
        first_day, latest = stored.get(account_id, (None, None))
        latest = dict(latest or {})
        with_data = [row for row in account_rows if row["values"]]
        for row in with_data:
            first_day = row["day"] if first_day is None else min(first_day, row["day"])
            for key, entry in row["values"].items():
                note_latest(latest, row["day"].isoformat(), key, entry)
        updates.append({"b_id": account_id, "b_first_day": first_day, "b_latest": latest})
    if updates:
        table = cast(Table, Account.__table__)
        db.session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(first_day=bindparam("b_first_day"), signal_latest=bindparam("b_latest")),
            updates,
        )


# ---- scoring every day ----------------------------------------------------------------------


def score_accounts(account_ids: list[str], through: date, metric_set: MetricSet) -> int:
    """One score per account and day, from its first day through `through`, set-based per
    account; no band change becomes an event (the past launches nothing). Returns the count."""
    cards = catalog.current().scorecards
    written = 0
    for start in range(0, len(account_ids), SCORE_BATCH):
        accounts = db.session.scalars(
            select(Account).where(Account.id.in_(account_ids[start : start + SCORE_BATCH]), Account.erased_at.is_(None))
        ).all()
        rows = []
        for account in accounts:
            card = cards.for_account(account)
            if card is None or account.first_day is None or account.first_day > through:
                continue
            frame = read_frame(account, account.first_day, through, metric_set)
            days = [account.first_day + timedelta(days=i) for i in range((through - account.first_day).days + 1)]
            metrics = compute(metric_set, frame, days)
            last_score = last_day = last_band = None
            for day in days:
                values = {**metrics[day], **builtin_metrics(account, day)}
                score, details = card.evaluate(values)
                if score is None:
                    continue
                rows.append(
                    {
                        "account_id": account.id,
                        "day": day,
                        "at": day_end(day),
                        "score": score,
                        "band": card.band(score),
                        "scorecard": card.name,
                        "details": details,
                    }
                )
                last_score, last_day, last_band = score, day, rows[-1]["band"]
            if last_day is not None and (account.score_day is None or last_day >= account.score_day):
                account.score, account.score_day, account.score_band = last_score, last_day, str(last_band)
        if rows:
            bulk.upsert(
                _table(HealthScore), rows, ("account_id", "day"), ("at", "score", "band", "scorecard", "details")
            )
            written += len(rows)
        db.session.commit()
    return written


# ---- rebuilding the declared series ----------------------------------------------------------


def rebuild_series(chunk: int = CHUNK, progress: Callable[[int], None] | None = None) -> dict:
    """Recompute every account-day's declared series from the stored events, then every
    account's daily scores: after a metrics file declared a series the rollups have no past of
    (`flask metrics rebuild`). Run again from the start if interrupted."""
    metric_set = catalog.current().metrics
    db.session.execute(update(DailyUsage).values(values=None))
    db.session.execute(update(Account).values(signal_latest=None, first_day=None))
    db.session.commit()
    types = sorted(metric_set.event_types())
    last_id, events, days = 0, 0, 0
    while True:
        batch = db.session.execute(
            select(Event.id, Event.account_id, Event.type, Event.occurred_at, Event.payload)
            .where(Event.id > last_id, Event.type.in_(types), Event.processed_at.is_not(None))
            .order_by(Event.id)
            .limit(chunk)
        ).all()
        if not batch:
            break
        rows = [
            (
                {
                    "account_id": e.account_id,
                    "type": e.type,
                    "occurred_at": e.occurred_at,
                    "properties": (e.payload or {}).get("properties") or {},
                },
                e.payload,
            )
            for e in batch
        ]
        days += _roll_up(rows, metric_set, series_only=True)
        db.session.commit()
        events, last_id = events + len(batch), batch[-1].id
        if progress:
            progress(len(batch))
    accounts = db.session.scalars(select(Account.id).where(Account.first_day.is_not(None))).all()
    scores = score_accounts(list(accounts), utcnow().date(), metric_set)
    return {"events": events, "account_days": days, "accounts": len(accounts), "scores": scores}
