"""Declared metrics of one account over a run of days, computed from its daily rollups.

A `Frame` holds an account's rollup values (daily_usage.values, one dict per day keyed by
series, app/signals/indicators.py) for a calendar run of days, from its first day with data
(or the start of what was read) to the last day asked for. Every metric of a MetricSet is
then computed for every day of the frame at once: prefix sums for the windowed sums, counts
and means, sliding sets for `distinct`, carried values for `latest` and `days_since`. The
same code serves one live event (a frame of the window's days, one day scored), a late event
(the days whose windows include it), and a history load (every day of every account).

What each day keeps per series (app/signals/rollups.py writes it):
    {"n": events, "s": sum, "lo": min, "hi": max, "p": positive values,
     "v": the last value, "t": its event time (epoch seconds),
     "set": [distinct values], "by": {user: [value, t]}}
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from app.signals.indicators import Metric, MetricSet, Series


@dataclass
class Carried:
    """The latest occurrence of a series before the frame's first day (for `latest`, `days_since`)."""

    day: date | None = None
    value: float | None = None
    t: float | None = None


@dataclass
class Frame:
    first: date  # the frame's first day (index 0)
    last: date
    data_start: date | None  # the account's first day with data; days before it do not exist
    days: dict[date, dict] = field(default_factory=dict)  # day -> {series key: entry}
    carried: dict[str, Carried] = field(default_factory=dict)  # series key -> before `first`
    # series key -> the first day the account sent it. An average per day of a feed the
    # account never sent (an integration without usage.daily) is empty, not a zero.
    series_start: dict[str, date] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1

    def index(self, day: date) -> int:
        return (day - self.first).days

    def entries(self, key: str) -> list[dict | None]:
        """The series' entry for every day of the frame (None on days without it)."""
        out: list[dict | None] = [None] * self.length
        for day, values in self.days.items():
            if self.first <= day <= self.last and key in values:
                out[self.index(day)] = values[key]
        return out


def compute(metric_set: MetricSet, frame: Frame, wanted: Iterable[date] | None = None) -> dict[date, dict]:
    """Every declared metric for each wanted day of the frame (default: all its days).

    A metric whose window lies wholly before the account's first day is None; one that
    reaches partly before it follows its `short_history` (null, scale or as_is)."""
    days = sorted(wanted) if wanted is not None else [frame.first + timedelta(days=i) for i in range(frame.length)]
    cache = _SeriesCache(frame)
    results: dict[date, dict] = {day: {} for day in days}
    indexes = [(day, frame.index(day)) for day in days]
    for metric in metric_set.metrics:
        if metric.change_of:
            continue
        for day, index in indexes:
            results[day][metric.name] = _round(_value(metric, frame, cache, day, index), metric.digits)
    for metric in metric_set.metrics:
        if not metric.change_of:
            continue
        base = metric_set.by_name[metric.change_of]
        for day, index in indexes:
            now = _value(base, frame, cache, day, index)  # unrounded, like the window before
            before = _value(base, frame, cache, day, index, extra_offset=base.window or 0, min_days=metric.min_days)
            change = None
            if now is not None and before:
                change = (now - before) / abs(before) * 100
            results[day][metric.name] = _round(change, metric.digits)
    return results


def _round(value: float | None, digits: int) -> float | int | None:
    if value is None:
        return None
    rounded = round(value, digits)
    return int(rounded) if float(rounded).is_integer() else rounded  # counts read as counts


class _SeriesCache:
    """Per series, the arrays a metric needs, built once per frame."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self._entries: dict[str, list[dict | None]] = {}
        self._prefix: dict[tuple[str, str], list[float]] = {}
        self._seen: dict[str, list[int]] = {}
        self._present: dict[str, list[int]] = {}
        self._active: dict[str, list[int]] = {}
        self._has_data: dict[str, bool] = {}
        start = frame.data_start or frame.first
        self.data_start = max(frame.index(start), 0)  # the first index with data

    def has_data(self, metric: Metric) -> bool:
        """Whether the account ever sent any of the metric's sources."""
        if metric.name not in self._has_data:
            self._has_data[metric.name] = any(s.key in self.frame.series_start for s in metric.sources)
        return self._has_data[metric.name]

    def active_prefix(self, metric: Metric) -> list[int]:
        """prefix[i] = days among 0..i-1 with an event of a source without a value, or a positive
        value of a source with one (active_days, per: active_day)."""
        if metric.name not in self._active:
            active = [False] * self.frame.length
            for series in metric.sources:
                field_name = "p" if series.path else "n"
                for index, entry in enumerate(self.entries(series)):
                    if entry and entry.get(field_name):
                        active[index] = True
            totals = [0]
            for flag in active:
                totals.append(totals[-1] + flag)
            self._active[metric.name] = totals
        return self._active[metric.name]

    def entries(self, series: Series) -> list[dict | None]:
        key = series.key
        if key not in self._entries:
            self._entries[key] = self.frame.entries(key)
        return self._entries[key]

    def prefix(self, series: Series, field_name: str) -> list[float]:
        """prefix[i] = the field's total over days 0..i-1 (so a window is prefix[b] - prefix[a])."""
        cache_key = (series.key, field_name)
        if cache_key not in self._prefix:
            totals = [0.0]
            for entry in self.entries(series):
                totals.append(totals[-1] + float((entry or {}).get(field_name) or 0))
            self._prefix[cache_key] = totals
        return self._prefix[cache_key]

    def last_seen(self, series: Series) -> list[int]:
        """last_seen[i] = the newest index <= i with an event of the series, or -1."""
        if series.key not in self._seen:
            newest, out = -1, []
            for index, entry in enumerate(self.entries(series)):
                if entry and entry.get("n"):
                    newest = index
                out.append(newest)
            self._seen[series.key] = out
        return self._seen[series.key]

    def present(self, series: Series) -> list[int]:
        """The indexes of the days with an entry, in order."""
        if series.key not in self._present:
            self._present[series.key] = [i for i, entry in enumerate(self.entries(series)) if entry]
        return self._present[series.key]


def _window(metric: Metric, cache: _SeriesCache, index: int, extra_offset: int) -> tuple[int, int, int] | None:
    """(first index, last index, days of data in the window) for the window ending `offset`
    days before the day at `index`; None when the whole window is before the account's first
    day (its first event of any declared series: windows are calendars from there)."""
    end = index - metric.offset - extra_offset
    if end < cache.data_start or (metric.per and not cache.has_data(metric)):
        return None
    covered_start = max(end - (metric.window or 1) + 1, cache.data_start)
    return covered_start, end, end - covered_start + 1


def _value(
    metric: Metric,
    frame: Frame,
    cache: _SeriesCache,
    day: date,
    index: int,
    extra_offset: int = 0,
    min_days: int | None = None,
) -> float | None:
    aggregate = metric.aggregate
    if aggregate in ("latest", "days_since") and not metric.window:
        return _latest(metric, frame, cache, day, None)
    bounds = _window(metric, cache, index, extra_offset)
    if bounds is None:
        return None
    first, last, covered = bounds
    if min_days is not None and covered < min(min_days, metric.window or min_days):
        return None
    window = metric.window or 1
    if aggregate in ("latest", "days_since"):
        return _latest(metric, frame, cache, day, (first, last))
    if aggregate == "distinct":
        return float(len(_distinct(metric, cache, first, last)))
    if aggregate in ("min", "max"):
        picked = []
        for series in metric.sources:
            entries = cache.entries(series)[first : last + 1]
            picked += [e["lo" if aggregate == "min" else "hi"] for e in entries if e and e.get("lo") is not None]
        if not picked:
            return None
        return min(picked) if aggregate == "min" else max(picked)
    if aggregate == "mean":
        total = sum(_total(cache, s, "s", first, last) for s in metric.sources)
        count = sum(_total(cache, s, "n", first, last) for s in metric.sources)
        return total / count if count else None
    if aggregate == "active_days":
        active = _active_days(metric, cache, first, last)
        return _short(metric, float(active), covered, window)
    field_name = "s" if aggregate == "sum" else "n"
    total = sum(_total(cache, s, field_name, first, last) for s in metric.sources)
    if metric.per == "day":
        return total / covered
    if metric.per == "active_day":
        active = _active_days(metric, cache, first, last)
        return total / active if active else None
    return _short(metric, total, covered, window)


def _short(metric: Metric, value: float, covered: int, window: int) -> float | None:
    """A window that reaches before the account's first day: null, scaled to the window, or as it is."""
    if covered >= window:
        return value
    if metric.short_history == "null":
        return None
    if metric.short_history == "scale":
        return value * window / covered
    return value


def _total(cache: _SeriesCache, series: Series, field_name: str, first: int, last: int) -> float:
    prefix = cache.prefix(series, field_name)
    return prefix[last + 1] - prefix[first]


def _active_days(metric: Metric, cache: _SeriesCache, first: int, last: int) -> int:
    """Days with an event (a source without a value) or a positive value (a source with one)."""
    prefix = cache.active_prefix(metric)
    return prefix[last + 1] - prefix[first]


def _distinct(metric: Metric, cache: _SeriesCache, first: int, last: int) -> set:
    seen: set = set()
    for series in metric.sources:
        entries, present = cache.entries(series), cache.present(series)
        for index in present[bisect.bisect_left(present, first) : bisect.bisect_right(present, last)]:
            entry = entries[index]
            if entry and entry.get("set"):
                seen.update(entry["set"])
    return seen


def _latest(metric: Metric, frame: Frame, cache: _SeriesCache, day: date, bounds: tuple[int, int] | None):
    """`latest` (the newest value; per user and averaged with `by`) or `days_since` (days since
    the newest event), within the window or, without one, however old (carried from before the frame)."""
    first, last = bounds if bounds else (0, frame.index(day))
    if metric.aggregate == "latest" and metric.sources[0].kind == "by":
        answers: dict[str, tuple[float, float]] = {}
        for series in metric.sources:
            entries, present = cache.entries(series), cache.present(series)
            for index in present[bisect.bisect_left(present, first) : bisect.bisect_right(present, last)]:
                for user, (value, t) in (entries[index] or {}).get("by", {}).items():
                    if value is not None and (user not in answers or t >= answers[user][1]):
                        answers[user] = (value, t)
        return sum(value for value, _ in answers.values()) / len(answers) if answers else None
    best: tuple[float, float | None, date] | None = None  # (event time, value, day)
    found: tuple[float, float | None, date]
    for series in metric.sources:
        index = cache.last_seen(series)[last] if last >= 0 else -1
        if index >= first:
            entry = cache.entries(series)[index] or {}
            found = (entry.get("t") or 0.0, entry.get("v"), frame.first + timedelta(days=index))
        elif bounds is None and (carried := frame.carried.get(series.key)) is not None and carried.day is not None:
            found = (carried.t or 0.0, carried.value, carried.day)
        else:
            continue
        if best is None or found[0] > best[0]:
            best = found
    if best is None:
        return None
    return best[1] if metric.aggregate == "latest" else float((day - best[2]).days)
