"""Scorecard files (scorecards/*.yml): weighted indicators that turn metrics into a 0-100 score.

Validated like rule files (closed schema, `file:line:column` errors). A band is the first
status whose threshold the score reaches, best first.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.filecheck import (
    FileError,
    content_hash,
    raise_if_any,
    read_all,
    schema_errors,
    suggest,
    yaml_files,
)
from app.models import HEALTH_STATUSES
from app.signals.indicators import shipped_metric_names

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["scorecards"],
    "properties": {
        "scorecards": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "indicators", "bands"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_.-]*$"},
                    "description": {"type": "string"},
                    "applies_to": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "segment": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "lifecycle_stage": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                            "plan": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        },
                    },
                    "indicators": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["metric", "weight", "points"],
                            "properties": {
                                "metric": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                                "weight": {"type": "number", "exclusiveMinimum": 0},
                                "direction": {
                                    "enum": ["higher_is_better", "lower_is_better"],
                                    "description": "say lower_is_better where points fall as the value rises",
                                },
                                "points": {
                                    "type": "array",
                                    "minItems": 2,
                                    "items": {
                                        "type": "array",
                                        "minItems": 2,
                                        "maxItems": 2,
                                        "prefixItems": [
                                            {"type": "number"},
                                            {"type": "number", "minimum": 0, "maximum": 100},
                                        ],
                                    },
                                },
                            },
                        },
                    },
                    "bands": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            status: {"type": "number", "minimum": 0, "maximum": 100} for status in HEALTH_STATUSES
                        },
                        "minProperties": 2,
                    },
                },
            },
        }
    },
}


@dataclass(frozen=True)
class Indicator:
    metric: str
    weight: float
    points: tuple[tuple[float, float], ...]

    def score(self, value) -> float | None:
        if value is None:
            return None
        points = self.points
        if value <= points[0][0]:
            return points[0][1]
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            if value <= x1:
                return y0 + (y1 - y0) * (value - x0) / (x1 - x0)
        return points[-1][1]


@dataclass(frozen=True)
class Scorecard:
    name: str
    indicators: tuple[Indicator, ...]
    bands: tuple[tuple[str, float], ...]  # best first: (status, minimum score)
    applies_to: dict

    def applies(self, account) -> bool:
        return all(getattr(account, field) in values for field, values in self.applies_to.items())

    def band(self, score: int) -> str:
        return next((status for status, minimum in self.bands if score >= minimum), self.bands[-1][0])

    def evaluate(self, metrics: dict) -> tuple[int | None, dict]:
        details, total, weights = {}, 0.0, 0.0
        for indicator in self.indicators:
            points = indicator.score(metrics.get(indicator.metric))
            details[indicator.metric] = {
                "value": metrics.get(indicator.metric),
                "weight": indicator.weight,
                "points": None if points is None else round(points, 1),
            }
            if points is not None:
                total += points * indicator.weight
                weights += indicator.weight
        return (round(total / weights) if weights else None), details


@dataclass(frozen=True)
class Scorecards:
    cards: tuple[Scorecard, ...]
    version: str

    def for_account(self, account) -> Scorecard | None:
        return next((card for card in self.cards if card.applies(account)), None)


def load_scorecards(folder: str, metrics: Collection[str] | None = None) -> Scorecards:
    """Every scorecard in `folder`; an indicator must name a metric in `metrics` (the live
    MetricSet's names; by default those of the repository's metrics/ folder)."""
    metrics = shipped_metric_names() if metrics is None else metrics
    files = yaml_files(folder)
    errors: list[FileError] = []
    cards: list[Scorecard] = []
    names: dict[str, str] = {}
    for doc in read_all(files, errors):
        path = doc.path
        found = schema_errors(doc, SCHEMA)
        errors.extend(found)
        if found:
            continue
        for index, raw in enumerate(doc.data["scorecards"]):
            where = ("scorecards", index)
            if raw["name"] in names:
                errors.append(
                    doc.error(
                        where + ("name",),
                        f"scorecard {raw['name']!r} is defined twice",
                        f"first at {names[raw['name']]}; rename one",
                    )
                )
            names[raw["name"]] = f"{path}:{doc.at(where)[0]}"
            for i, indicator in enumerate(raw["indicators"]):
                if indicator["metric"] not in metrics:
                    errors.append(
                        doc.error(
                            where + ("indicators", i, "metric"),
                            f"unknown metric {indicator['metric']!r}",
                            suggest(indicator["metric"], sorted(metrics), "metrics (built in and in metrics/)"),
                        )
                    )
                ys = [y for _, y in indicator["points"]]
                falls = ys[-1] < ys[0]
                stated = indicator.get("direction")
                if stated and (stated == "lower_is_better") != falls:
                    errors.append(
                        doc.error(
                            where + ("indicators", i, "direction"),
                            f"direction says {stated} but the points {'fall' if falls else 'rise'} with the value",
                            "make the points rise for higher_is_better and fall for lower_is_better",
                        )
                    )
                xs = [x for x, _ in indicator["points"]]
                if xs != sorted(xs) or len(set(xs)) != len(xs):
                    errors.append(
                        doc.error(
                            where + ("indicators", i, "points"),
                            "points must go up in value, without repeats",
                            "order the [value, points] pairs by value",
                        )
                    )
            bands = sorted(raw["bands"].items(), key=lambda item: -item[1])
            cards.append(
                Scorecard(
                    name=raw["name"],
                    indicators=tuple(
                        Indicator(
                            ind["metric"], float(ind["weight"]), tuple((float(x), float(y)) for x, y in ind["points"])
                        )
                        for ind in raw["indicators"]
                    ),
                    bands=tuple(bands),
                    applies_to={k: tuple(v) for k, v in (raw.get("applies_to") or {}).items()},
                )
            )
    raise_if_any(errors)
    return Scorecards(tuple(cards), content_hash(files))
