"""How well the live scorecards predict churn on the team's own history: `flask scorecards validate`.

Observations as *Fighting Churn With Data* makes them (CONTRACT section 7): one per account
per month of tenure, `lead` days (5) before each monthly anniversary of its first day, scored
as of the day before, labelled by whether the account churned within the next `horizon` days
(30). An account that turned black (or, with a labels file, has a churn date) is a churn on
that day; it has no observations after it. An observation whose month ends after the last
stored day is left out (its outcome is not known yet).

The report: the AUC of the score (the chance that a churner scored lower than an account that
stayed) with a bootstrap interval, the churn rate, for each band the share of churners and of
the others in it and its churn rate, the churn rate per score decile and the top-decile lift,
and each indicator's own AUC and whether it points the way its scorecard says.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from app import catalog
from app.extensions import db
from app.models import Account, HealthChange
from app.models.score import HealthScore

BOOTSTRAP = 200
CHURNED = ("black",)
# Below this many churn observations the figures are too uncertain to tune a scorecard on.
MIN_CHURNERS = 30


@dataclass
class Observation:
    account_id: str
    day: date  # the observation date; the score is of the day before
    score: int
    band: str
    churned: bool
    values: dict  # indicator metric -> value, from the score's details


@dataclass
class IndicatorReport:
    metric: str
    auc: float | None  # chance a churner's value is lower than another's
    says: str  # the scorecard's direction: higher_is_better or lower_is_better
    agrees: bool | None  # does the data point the way the scorecard says?
    observations: int


@dataclass
class ValidationReport:
    observations: int = 0
    churners: int = 0
    auc: float | None = None
    auc_interval: tuple[float, float] | None = None
    churn_rate: float | None = None
    bands: dict = field(default_factory=dict)
    deciles: list = field(default_factory=list)
    top_decile_lift: float | None = None
    indicators: list = field(default_factory=list)
    since: str | None = None
    last_day: str | None = None
    horizon_days: int = 30
    lead_days: int = 5
    labels: str = "health history (turned black)"

    def as_json(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        lines = [
            "# Health score validation",
            "",
            f"Churn from {self.labels}; observations from {self.since} to {self.last_day}, one per account and "
            f"month, {self.lead_days} days before the monthly anniversary, churn within {self.horizon_days} days.",
            "",
            f"- Observations: {self.observations:,}, of which churners: {self.churners:,} "
            f"(churn rate {_pct(self.churn_rate)})",
            *(
                [
                    f"> Only {self.churners} churn observations (fewer than {MIN_CHURNERS}): these figures are too "
                    "uncertain to tune a scorecard on; wait for more history"
                    + ("." if self.labels.startswith("labels file") else ", or give --labels."),
                    "",
                ]
                if self.observations and self.churners < MIN_CHURNERS
                else []
            ),
            f"- AUC: {_num(self.auc)}"
            + (
                f" (95% bootstrap {_num(self.auc_interval[0])}-{_num(self.auc_interval[1])})"
                if self.auc_interval
                else ""
            ),
            f"- Top-decile lift: {_num(self.top_decile_lift)} "
            "(the churn rate of the lowest-scored 10%, over the overall churn rate)",
            "",
            "| band | churners in it | others in it | churn rate |",
            "| --- | --- | --- | --- |",
        ]
        for band, row in self.bands.items():
            lines.append(f"| {band} | {_pct(row['churners'])} | {_pct(row['others'])} | {_pct(row['churn_rate'])} |")
        lines += ["", "| score decile (lowest first) | scores | churn rate |", "| --- | --- | --- |"]
        for row in self.deciles:
            lines.append(f"| {row['decile']} | {row['low']}-{row['high']} | {_pct(row['churn_rate'])} |")
        lines += ["", "| indicator | AUC | the scorecard says | the data agrees |", "| --- | --- | --- | --- |"]
        for row in self.indicators:
            agrees = "n/a" if row["agrees"] is None else ("yes" if row["agrees"] else "**no: it points the other way**")
            lines.append(f"| {row['metric']} | {_num(row['auc'])} | {row['says']} | {agrees} |")
        return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def churn_dates(labels: Path | None = None) -> dict[str, date]:
    """Account id -> churn date: the first time it turned black, or the labels file's (account_id,churn_date)."""
    if labels is not None:
        with labels.open(newline="", encoding="utf-8") as handle:
            return {row["account_id"]: date.fromisoformat(row["churn_date"][:10]) for row in csv.DictReader(handle)}
    rows = db.session.execute(
        select(HealthChange.account_id, func.min(HealthChange.at))
        .where(HealthChange.status.in_(CHURNED))
        .group_by(HealthChange.account_id)
    )
    return {account_id: at.date() for account_id, at in rows}


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later (the month's last day when it has fewer)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise ValueError(day)


def observations(
    since: date | None = None, horizon: int = 30, lead: int = 5, labels: Path | None = None
) -> tuple[list[Observation], date | None]:
    """The observations over the stored scores, and the last stored day."""
    last_day = db.session.scalar(select(func.max(HealthScore.day)))
    if last_day is None:
        return [], None
    churns = churn_dates(labels)
    found = []
    accounts = db.session.execute(select(Account.id, Account.first_day).where(Account.first_day.is_not(None))).all()
    for account_id, first_day in accounts:
        assert first_day is not None  # the query's filter
        churn = churns.get(account_id)
        wanted = {}
        for month in range(1, 1000):
            day = add_months(first_day, month) - timedelta(days=lead)
            if day + timedelta(days=horizon - 1) > last_day or (churn is not None and churn < day):
                break
            if since is None or day >= since:
                wanted[day - timedelta(days=1)] = day
        if not wanted:
            continue
        for point in db.session.execute(
            select(HealthScore.day, HealthScore.score, HealthScore.band, HealthScore.details).where(
                HealthScore.account_id == account_id, HealthScore.day.in_(sorted(wanted))
            )
        ):
            day = wanted[point.day]
            churned = churn is not None and day <= churn < day + timedelta(days=horizon)
            values = {name: (detail or {}).get("value") for name, detail in (point.details or {}).items()}
            found.append(Observation(account_id, day, point.score, point.band, churned, values))
    return found, last_day


def auc(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """The chance that a churner's value is lower than a non-churner's (ties count half):
    Mann-Whitney U over ranks, in O(n log n)."""
    ranked = sorted((value, churned) for value, churned in pairs if value is not None)
    churners = sum(1 for _, churned in ranked if churned)
    others = len(ranked) - churners
    if not churners or not others:
        return None
    # Average ranks of ties, then the churners' rank sum from the top (lower value = more churn-like).
    rank_sum, index = 0.0, 0
    while index < len(ranked):
        end = index
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[index][0]:
            end += 1
        average = (index + end) / 2 + 1
        rank_sum += average * sum(1 for k in range(index, end + 1) if ranked[k][1])
        index = end + 1
    u_low = rank_sum - churners * (churners + 1) / 2  # pairs where the churner ranks higher
    return 1 - u_low / (churners * others)


def validate(
    since: date | None = None, horizon: int = 30, lead: int = 5, labels: Path | None = None, seed: int = 1
) -> ValidationReport:
    found, last_day = observations(since, horizon, lead, labels)
    first_observed = since or min((o.day for o in found), default=None)
    report = ValidationReport(
        since=first_observed.isoformat() if first_observed else None,
        last_day=last_day.isoformat() if last_day else None,
        horizon_days=horizon,
        lead_days=lead,
        labels=f"labels file {labels.name}" if labels else "health history (turned black)",
    )
    report.observations = len(found)
    report.churners = sum(1 for o in found if o.churned)
    if not found:
        return report
    report.churn_rate = report.churners / len(found)
    report.auc = _round(auc((o.score, o.churned) for o in found))
    report.auc_interval = _bootstrap(found, seed)
    churners, others = report.churners, len(found) - report.churners
    cards = catalog.current().scorecards
    band_order = [status for card in cards.cards for status, _ in card.bands]
    for band in dict.fromkeys(band_order + sorted({o.band for o in found})):
        in_band = [o for o in found if o.band == band]
        if not in_band and band not in {o.band for o in found}:
            continue
        report.bands[band] = {
            "churners": sum(1 for o in in_band if o.churned) / churners if churners else None,
            "others": sum(1 for o in in_band if not o.churned) / others if others else None,
            "churn_rate": sum(1 for o in in_band if o.churned) / len(in_band) if in_band else None,
            "observations": len(in_band),
        }
    ordered = sorted(found, key=lambda o: o.score)
    for decile in range(10):
        part = ordered[len(ordered) * decile // 10 : len(ordered) * (decile + 1) // 10]
        if part:
            rate = sum(1 for o in part if o.churned) / len(part)
            report.deciles.append(
                {"decile": decile + 1, "low": part[0].score, "high": part[-1].score, "churn_rate": rate}
            )
    if report.deciles and report.churn_rate:
        report.top_decile_lift = _round(report.deciles[0]["churn_rate"] / report.churn_rate)
    report.indicators = [asdict(row) for row in _indicators(found, cards)]
    return report


def _bootstrap(found: list[Observation], seed: int) -> tuple[float, float] | None:
    rng = random.Random(seed)
    values = []
    for _ in range(BOOTSTRAP):
        sample = [found[rng.randrange(len(found))] for _ in found]
        value = auc((o.score, o.churned) for o in sample)
        if value is not None:
            values.append(value)
    if len(values) < BOOTSTRAP // 2:
        return None
    values.sort()
    return round(values[int(0.025 * len(values))], 3), round(values[int(0.975 * len(values)) - 1], 3)


def _indicators(found: list[Observation], cards) -> list[IndicatorReport]:
    says: dict[str, str] = {}
    for card in cards.cards:
        for indicator in card.indicators:
            falls = indicator.points[-1][1] < indicator.points[0][1]
            says.setdefault(indicator.metric, "lower_is_better" if falls else "higher_is_better")
    rows = []
    for metric, direction in says.items():
        pairs = [(float(o.values[metric]), o.churned) for o in found if o.values.get(metric) is not None]
        value = _round(auc(pairs))
        agrees = None
        churners = sum(1 for _, churned in pairs if churned)
        # A verdict needs enough churners and a lean worth the name; else "n/a".
        if value is not None and churners >= MIN_CHURNERS and abs(value - 0.5) >= 0.02:
            # Churners lower (AUC > 0.5) is what higher_is_better expects.
            agrees = (value > 0.5) == (direction == "higher_is_better")
        rows.append(IndicatorReport(metric, value, direction, agrees, len(pairs)))
    return sorted(rows, key=lambda row: -abs((row.auc or 0.5) - 0.5))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def write(report: ValidationReport, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    markdown, data = folder / "validation.md", folder / "validation.json"
    markdown.write_text(report.markdown(), encoding="utf-8")
    data.write_text(json.dumps(report.as_json(), indent=2, default=str), encoding="utf-8")
    return markdown, data


DEFAULT_SINCE_DAYS = 365  # the command's and the admin's window, so both show the same figures


def run_and_write(folder: Path) -> dict:
    """The maintenance job's work (the admin's "Run validation now"): `validate()` over the last
    DEFAULT_SINCE_DAYS of stored scores, as the command does by default, written to `folder`; a
    summary for the job's result."""
    last = db.session.scalar(select(func.max(HealthScore.day)))
    report = validate(since=last - timedelta(days=DEFAULT_SINCE_DAYS) if last else None)
    _, data = write(report, folder)
    return {
        "observations": report.observations,
        "churners": report.churners,
        "auc": report.auc,
        "since": report.since,
        "last_day": report.last_day,
        "written": str(data),
    }


# ---- calibration -----------------------------------------------------------------------------


@dataclass
class Calibration:
    scorecard: str
    account_days: int
    shares: dict  # band -> wanted share of account-days (worst bands; the best takes the rest)
    current: dict  # band -> threshold now
    suggested: dict  # band -> threshold that gives the shares
    current_shares: dict  # band -> share of account-days the current thresholds give


def calibrate(scorecard: str, shares: dict[str, float], since: date | None = None) -> Calibration:
    """Band thresholds that put the given shares of the stored account-days (of this scorecard,
    since `since`) in each of the worse bands: red = the worst 20% means red's share is 0.2."""
    card = next((c for c in catalog.current().scorecards.cards if c.name == scorecard), None)
    if card is None:
        raise ValueError(f"no scorecard {scorecard!r}")
    query = select(HealthScore.score).where(HealthScore.scorecard == scorecard)
    if since is not None:
        query = query.where(HealthScore.day >= since)
    scores = sorted(db.session.scalars(query).all())
    bands = [status for status, _ in card.bands]  # best first
    unknown = set(shares) - set(bands[1:])
    if unknown:
        raise ValueError(f"shares for {sorted(unknown)}: give shares for the worse bands of {bands}")
    suggested: dict[str, float] = {bands[-1]: 0}
    cumulative = 0.0
    for status in reversed(bands[1:]):  # from the worst band up
        cumulative += shares.get(status, 0.0)
        upper = bands[bands.index(status) - 1]
        suggested[upper] = _quantile(scores, cumulative) if scores else dict(card.bands)[upper]
    suggested = {status: suggested[status] for status in bands}  # best first, as the files write them
    current_shares = {
        status: sum(1 for s in scores if card.band(s) == status) / len(scores) if scores else None for status in bands
    }
    return Calibration(scorecard, len(scores), shares, dict(card.bands), suggested, current_shares)


def _quantile(scores: list[int], share: float) -> int:
    """The lowest score above the worst `share` of them (so that share falls below it)."""
    index = min(len(scores) - 1, max(0, round(share * len(scores))))
    return int(scores[index])


def write_bands(scorecard: str, bands: dict[str, int], folder: str) -> str:
    """Rewrite the scorecard's `bands:` line in its file (a flow mapping on one line, as shipped);
    the path written. Comments and the rest of the file stay as they are."""
    from app.filecheck import read_yaml, yaml_files

    for path in yaml_files(folder):
        doc = read_yaml(path)
        for index, raw in enumerate((doc.data or {}).get("scorecards") or []):
            if raw.get("name") != scorecard:
                continue
            line_number = doc.at(("scorecards", index, "bands"))[0]
            lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
            line = lines[line_number - 1]
            head, sep, tail = line.partition("bands:")
            if not sep or "{" not in tail:
                raise ValueError(
                    f"{path}:{line_number}: bands is not a one-line mapping; write {_flow(bands)} there by hand"
                )
            lines[line_number - 1] = f"{head}bands: {_flow(bands)}\n"
            Path(path).write_text("".join(lines), encoding="utf-8")
            return path
    raise ValueError(f"no scorecard {scorecard!r} in {folder}")


def _flow(bands: dict[str, int]) -> str:
    return "{" + ", ".join(f"{status}: {threshold}" for status, threshold in bands.items()) + "}"
