"""Declared health indicators: `metrics/*.yml` (CONTRACT section 7), loaded into a MetricSet.

CS ops declare what to measure for their product; nothing here knows a product. A metric
reads one event type (or several, `also_from`), a property path (or none, to count events),
aggregates it over a calendar window in event time, and may be normalised per day or per
active day. A derived metric (`change_of`) is the percent change against the window just
before. Built-in facts (tenure, days to renewal, days since the decision maker changed) are
metrics too, computed from the account (BUILTIN below).

What the daily rollup keeps follows from the declarations: each metric needs one or more
*series* (an event type, a path, an optional filter, and what to keep per day: numbers, a
set of values, or the latest value per user). `Series.key` names a series in
`daily_usage.values`. A series added by a new declaration has no past until
`flask metrics rebuild` (or a history load) computes it from the stored events.

Validated like the rule files: closed schema, `file:line:column` errors with a hint,
refused at load while the last good set keeps running (app/signals/scores.py reloads it).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from app.config import ROOT
from app.filecheck import (
    FileError,
    YamlFile,
    content_hash,
    raise_if_any,
    read_all,
    schema_errors,
    suggest,
    yaml_files,
)

AGGREGATES = ("sum", "count", "mean", "min", "max", "latest", "distinct", "active_days", "days_since")
# What each aggregate keeps per day: numbers (count, sum, min, max, last), or a set of values.
SET_AGGREGATES = ("distinct",)
NEEDS_VALUE = ("sum", "mean", "min", "max", "latest", "distinct")
# Aggregates where a day without events is a zero (the window is a calendar, not a list of rows).
ZERO_FILLED = ("sum", "count", "active_days")
SHORT_HISTORY = ("null", "scale", "as_is")
NAME = r"^[a-z][a-z0-9_]*$"
EVENT_TYPE = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"
PROPERTY_PATH = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"
MAX_WINDOW = 730

# Facts of the account itself, always there (no declaration needed); docs/signals.md lists them.
BUILTIN = {
    "tenure_days": "days since the account's first day (customer_since, else its first event), as of the day scored",
    "days_to_renewal": "days from the day scored to renewal_date (negative once past); null without one",
    "days_since_decision_maker_changed": "days since the decision maker contact changed; null if never",
}

_SOURCE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["from"],
    "properties": {
        "from": {"type": "string", "pattern": EVENT_TYPE, "description": "an event type, e.g. usage.feature_used"},
        "value": {"type": "string", "pattern": PROPERTY_PATH, "description": "a property path, e.g. feature"},
    },
}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["metrics"],
    "properties": {
        "metrics": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {
                        "type": "string",
                        "pattern": NAME,
                        "description": "lower case letters, digits and _, starting with a letter",
                    },
                    "description": {"type": "string"},
                    "from": {
                        "type": "string",
                        "pattern": EVENT_TYPE,
                        "description": "an event type with a dot, e.g. usage.daily",
                    },
                    "value": {
                        "type": "string",
                        "pattern": PROPERTY_PATH,
                        "description": "a path into the event's properties, e.g. features.message",
                    },
                    "also_from": {"type": "array", "minItems": 1, "items": _SOURCE},
                    "aggregate": {"enum": list(AGGREGATES)},
                    "window": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
                    "where": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": ["string", "number", "boolean"]},
                        },
                        "description": "property path: [allowed values], e.g. {severity: [high, urgent]}",
                    },
                    "map": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {"type": "number"},
                        "description": "text value: number, e.g. {happy: 3, not_happy: 1}",
                    },
                    "by": {
                        "type": "string",
                        "pattern": PROPERTY_PATH,
                        "description": "with `latest`: each user's latest answer (e.g. by: user_id), averaged",
                    },
                    "per": {"enum": ["day", "active_day"]},
                    "short_history": {"enum": list(SHORT_HISTORY)},
                    "offset": {"type": "integer", "minimum": 0, "maximum": MAX_WINDOW},
                    "change_of": {"type": "string", "pattern": NAME},
                    "min_days": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW},
                    "direction": {
                        "enum": ["higher_is_better", "lower_is_better"],
                        "description": "what a rising value means for health (reports use it)",
                    },
                    "round": {"type": "integer", "minimum": 0, "maximum": 6},
                },
            },
        },
        # Samples: events of an imagined account, and what the metrics must be on a day
        # (app/signals/samples.py runs them; `make check` and the test suite too).
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "events", "on_day", "expect"],
                "properties": {
                    "name": {"type": "string"},
                    "first_day": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "the account's first day, if before its first event",
                    },
                    "events": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["day", "type"],
                            "properties": {
                                "day": {"type": "integer", "minimum": 0},
                                "type": {"type": "string", "pattern": EVENT_TYPE},
                                "properties": {"type": "object"},
                                "repeat": {
                                    "type": "integer",
                                    "minimum": 1,
                                    "description": "the same event on this many days from `day` on",
                                },
                            },
                        },
                    },
                    "on_day": {"type": "integer", "minimum": 0},
                    "expect": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {"type": ["number", "null"]},
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Series:
    """What the rollup keeps per account and day for one source of a metric."""

    event_type: str
    path: str | None  # None: the events are counted
    where: tuple[tuple[str, tuple], ...] = ()
    kind: str = "numbers"  # numbers | set | by
    mapping: tuple[tuple[str, float], ...] = ()
    by: str | None = None

    @functools.cached_property
    def key(self) -> str:  # cached: asked for once per event and series in a history load
        """A stable, readable name in daily_usage.values, e.g. `support.ticket:#[severity=high|urgent]`."""
        text = f"{self.event_type}:{self.path or '#'}"
        if self.where:
            text += "[" + ",".join(f"{path}={'|'.join(map(str, values))}" for path, values in self.where) + "]"
        if self.kind == "set":
            text += "{set}"
        if self.kind == "by":
            text += f"{{by {self.by}}}"
        if self.mapping:
            text += "{map " + json.dumps(dict(self.mapping), sort_keys=True, separators=(",", ":")) + "}"
        return text

    def matches(self, properties: dict) -> bool:
        return all(_at(properties, path) in values for path, values in self.where)

    def number(self, raw: object) -> float | None:
        """The numeric value of a property (through the map when there is one)."""
        if self.mapping:
            return dict(self.mapping).get(raw) if isinstance(raw, str) else None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return None
        return float(raw)


@dataclass(frozen=True)
class Metric:
    name: str
    description: str = ""
    aggregate: str | None = None  # None for change_of
    window: int | None = None
    sources: tuple[Series, ...] = ()
    per: str | None = None
    short_history: str = "as_is"
    offset: int = 0
    change_of: str | None = None
    min_days: int = 7
    direction: str | None = None
    digits: int = 2
    file: str = ""
    line: int = 0

    @property
    def span(self) -> int:
        """How many days back from the day scored this metric reads (window, offset, baseline)."""
        return (self.window or 0) + self.offset


@dataclass(frozen=True)
class MetricSet:
    metrics: tuple[Metric, ...]
    version: str
    by_name: dict[str, Metric] = field(default_factory=dict, compare=False, repr=False)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(BUILTIN) + tuple(metric.name for metric in self.metrics)

    def series(self) -> dict[str, Series]:
        """Every series the declarations need, by key."""
        return self._series

    @functools.cached_property
    def _series(self) -> dict[str, Series]:
        return {source.key: source for metric in self.metrics for source in metric.sources}

    def series_for(self, event_type: str) -> list[Series]:
        return self._by_type.get(event_type, [])

    @functools.cached_property
    def _by_type(self) -> dict[str, list[Series]]:
        by_type: dict[str, list[Series]] = {}
        for series in self._series.values():
            by_type.setdefault(series.event_type, []).append(series)
        return by_type

    def event_types(self) -> set[str]:
        return set(self._by_type)

    def span(self) -> int:
        return self._span

    @functools.cached_property
    def _span(self) -> int:
        """Days back any metric reads (a change_of reads its base's window twice)."""
        spans = [0]
        for metric in self.metrics:
            if metric.change_of:
                base = self.by_name[metric.change_of]
                spans.append(2 * base.window + base.offset if base.window else base.span)
            else:
                spans.append(metric.span)
        return max(spans)


def _at(properties: dict, path: str) -> object:
    value: object = properties
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def value_at(properties: dict, path: str) -> object:
    """The value at a dotted path in an event's properties, or None."""
    return _at(properties, path)


def load_metrics(folder: str) -> MetricSet:
    """Load and check every file in `folder`; FileErrors naming file, line and fix otherwise."""
    files = yaml_files(folder)
    errors: list[FileError] = []
    raw_metrics: list[tuple[dict, YamlFile, tuple]] = []
    names: dict[str, str] = {}
    for doc in read_all(files, errors):
        path = doc.path
        found = schema_errors(doc, SCHEMA)
        errors.extend(found)
        # A metric with a schema error is left out; the others are still checked, so one run
        # reports every problem.
        broken = {error.path[:2] for error in found}
        items = doc.data.get("metrics") if isinstance(doc.data, dict) else None
        if not isinstance(items, list):
            continue
        for index, raw in enumerate(items):
            where = ("metrics", index)
            if where in broken or not isinstance(raw, dict):
                continue
            name = raw["name"]
            if name in names:
                errors.append(
                    doc.error(
                        where + ("name",), f"metric {name!r} is defined twice", f"first at {names[name]}; rename one"
                    )
                )
                continue
            if name in BUILTIN:
                errors.append(
                    doc.error(
                        where + ("name",),
                        f"{name!r} is a built-in metric",
                        "choose another name; built-ins need no declaration",
                    )
                )
                continue
            names[name] = f"{path}:{doc.at(where)[0]}"
            raw_metrics.append((raw, doc, where))
    declared = []  # (metric, doc, where)
    for raw, doc, where in raw_metrics:
        metric, found = _metric(raw, doc, where)
        errors.extend(found)
        if metric is not None:
            declared.append((metric, doc, where))
    by_name = {metric.name: metric for metric, _, _ in declared}
    for metric, doc, where in declared:
        if not metric.change_of:
            continue
        base = by_name.get(metric.change_of)
        if base is None:
            errors.append(
                doc.error(
                    where + ("change_of",),
                    f"change_of names an unknown metric {metric.change_of!r}",
                    suggest(metric.change_of, sorted(by_name), "declared metrics"),
                )
            )
        elif base.change_of or not base.window:
            errors.append(
                doc.error(
                    where + ("change_of",),
                    f"change_of needs a windowed metric; {base.name!r} has no window",
                    "point it at a metric with `window:`",
                )
            )
    metrics = [metric for metric, _, _ in declared]
    raise_if_any(errors)
    return MetricSet(tuple(metrics), content_hash(files), by_name)


def _metric(raw: dict, doc, where: tuple) -> tuple[Metric | None, list[FileError]]:
    """One declaration, checked beyond the schema (combinations the schema cannot say)."""
    errors = []
    position = {"file": doc.path, "line": doc.at(where)[0]}
    common = {
        "name": raw["name"],
        "description": raw.get("description", ""),
        "direction": raw.get("direction"),
        "digits": raw.get("round", 2),
        **position,
    }
    if "change_of" in raw:
        extra = sorted(set(raw) - {"name", "description", "change_of", "min_days", "direction", "round"})
        if extra:
            errors.append(
                doc.error(
                    where + (extra[0],),
                    f"a change_of metric takes no {extra[0]!r}",
                    "it compares its base metric's window with the one before; keep "
                    "name, description, change_of, min_days, direction, round",
                )
            )
            return None, errors
        return Metric(change_of=raw["change_of"], min_days=raw.get("min_days", 7), **common), errors
    for key in ("from", "aggregate"):
        if key not in raw:
            errors.append(
                doc.error(
                    where,
                    f"metric {raw['name']!r} is missing the required key {key!r}",
                    "add `from:` (an event type) and `aggregate:`, or `change_of:`",
                )
            )
    if errors:
        return None, errors
    aggregate = raw["aggregate"]
    if aggregate in NEEDS_VALUE and "value" not in raw:
        errors.append(
            doc.error(
                where + ("aggregate",),
                f"{aggregate} needs a `value:` (a property path)",
                "count, active_days and days_since count events; the others read a value",
            )
        )
    if aggregate not in ("latest", "days_since") and "window" not in raw:
        errors.append(
            doc.error(
                where + ("aggregate",),
                f"{aggregate} needs a `window:` in days",
                "e.g. window: 28 (a day without events is a zero)",
            )
        )
    if "by" in raw and aggregate != "latest":
        errors.append(
            doc.error(
                where + ("by",),
                "`by` goes with aggregate: latest",
                "each user's latest value, averaged for the account",
            )
        )
    if "per" in raw and aggregate not in ("sum", "count"):
        errors.append(
            doc.error(
                where + ("per",),
                "`per` normalises a sum or a count",
                "use aggregate: sum or count with per: day or per: active_day",
            )
        )
    if errors:
        return None, errors
    kind = "set" if aggregate in SET_AGGREGATES else "by" if "by" in raw else "numbers"
    where_filter = tuple(sorted((path, tuple(values)) for path, values in (raw.get("where") or {}).items()))
    mapping = tuple(sorted((raw.get("map") or {}).items()))
    # active_days counts days with an event, or with a positive value when a source names one.
    value = raw.get("value") if aggregate not in ("count", "days_since") else None
    sources = [Series(raw["from"], value, where_filter, kind, mapping, raw.get("by"))]
    for index, extra in enumerate(raw.get("also_from") or ()):
        if aggregate != "active_days" and (extra.get("value") is None) != (value is None):
            errors.append(
                doc.error(
                    where + ("also_from", index),
                    "also_from must read a value exactly when the metric does",
                    "give `value:` to both, or to neither",
                )
            )
            continue
        sources.append(Series(extra["from"], extra.get("value"), where_filter, kind, mapping, raw.get("by")))
    short_history = raw.get("short_history", "as_is")  # count what is there, unless the file says otherwise
    metric = Metric(
        aggregate=aggregate,
        window=raw.get("window"),
        sources=tuple(sources),
        per=raw.get("per"),
        short_history=short_history,
        offset=raw.get("offset", 0),
        **common,
    )
    return metric, errors


@functools.cache
def shipped_metric_names() -> tuple[str, ...]:
    """The metric names of the repository's own metrics/ folder: the vocabulary of a rules or
    scorecards folder checked on its own (tests, `flask rules check --rules DIR`). A running
    server checks against its live MetricSet instead (app/catalog.py)."""
    return load_metrics(str(ROOT / "metrics")).names
