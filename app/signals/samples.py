"""Metric samples: the `tests:` of metrics/*.yml, run in memory.

A sample is an imagined account's events, by day number, and the values some metrics must
have on a given day. It runs through the same rollup and metric code as live events
(app/signals/rollups.py, app/signals/frame.py), without a database, so CS ops see at once
whether a declaration measures what they meant: `make check`, `flask metrics test`, and the
test suite run every shipped sample.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from app.filecheck import FileError, FileErrors, raise_if_any, read_yaml, suggest, yaml_files
from app.signals.frame import Frame, compute
from app.signals.indicators import BUILTIN, MetricSet
from app.signals.rollups import apply_series, signal_properties

DAY_ZERO = date(2026, 1, 1)  # a sample's day 0 (any date would do: windows are relative)
TOLERANCE = 0.01


@dataclass(frozen=True)
class MetricSample:
    name: str
    events: tuple[dict, ...]
    on_day: int
    expect: dict
    first_day: int | None
    file: str
    line: int


def load_metric_samples(folder: str) -> list[MetricSample]:
    """Every sample of every metrics file (the files are checked by load_metrics first)."""
    samples, errors = [], []
    for path in yaml_files(folder):
        try:
            doc = read_yaml(path)
        except FileErrors as exc:
            errors.extend(exc.errors)
            continue
        for index, raw in enumerate((doc.data or {}).get("tests") or []):
            samples.append(
                MetricSample(
                    name=raw["name"],
                    events=tuple(raw["events"]),
                    on_day=raw["on_day"],
                    expect=dict(raw["expect"]),
                    first_day=raw.get("first_day"),
                    file=path,
                    line=doc.at(("tests", index))[0],
                )
            )
    raise_if_any(errors)
    return samples


def run_sample(metric_set: MetricSet, sample: MetricSample) -> dict:
    """The declared metrics on the sample's day."""
    days: dict[date, dict] = {}
    starts: dict[str, date] = {}
    sequence = 0
    for event in sample.events:
        for repeat in range(event.get("repeat", 1)):
            day = DAY_ZERO + timedelta(days=event["day"] + repeat)
            sequence += 1
            at = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=43200 + sequence)
            properties = signal_properties(event["type"], event.get("properties") or {})
            values = days.setdefault(day, {})
            for key in apply_series(values, metric_set, event["type"], properties, at.timestamp()):
                starts[key] = min(starts.get(key, day), day)
    first_event = min(days) if days else DAY_ZERO
    data_start = DAY_ZERO + timedelta(days=sample.first_day) if sample.first_day is not None else first_event
    on_day = DAY_ZERO + timedelta(days=sample.on_day)
    first = min(data_start, on_day)
    frame = Frame(first=first, last=on_day, data_start=data_start, days=days, series_start=starts)
    return compute(metric_set, frame, [on_day])[on_day]


def failing_metric_samples(metric_set: MetricSet, samples: list[MetricSample]) -> list[FileError]:
    """One error per expected value a sample does not get, with what it got."""
    failures = []
    for sample in samples:
        got = run_sample(metric_set, sample)
        for name, expected in sample.expect.items():
            if name in BUILTIN:
                failures.append(_failure(sample, f"{name!r} is built in; samples check declared metrics only", ""))
                continue
            if name not in got:
                failures.append(
                    _failure(sample, f"expects unknown metric {name!r}", suggest(name, sorted(got), "declared metrics"))
                )
                continue
            value = got[name]
            if not _same(value, expected):
                failures.append(
                    _failure(
                        sample,
                        f"{name} is {value!r} on day {sample.on_day}, expected {expected!r}",
                        "check the metric's window, aggregate and per:, or the sample's events",
                    )
                )
    return failures


def _same(value: float | None, expected: float | None) -> bool:
    if value is None or expected is None:
        return value is None and expected is None
    return abs(value - expected) <= TOLERANCE


def _failure(sample: MetricSample, message: str, hint: str) -> FileError:
    return FileError(sample.file, sample.line, 1, f"sample {sample.name!r}: {message}", hint)
