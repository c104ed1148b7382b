"""Replaying stored events through a candidate rule set, with no side effects.

Reads Event rows in event-time order, builds each event's facts as the pipeline does
(account as stored now, the health change as recorded, metrics at the event's time), and
matches them with the production matcher of both the candidate and the live rules. A rule
"would launch" when it matched, is enabled, was not superseded by a higher-priority rule
with the same playbook, and its throttle (simulated in memory) let it through. Nothing is
written: the session is rolled back at the end.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.matching.enforcer import throttle_key
from app.matching.facts import stored_event_facts
from app.matching.matcher import Matcher
from app.models import Account, Event, HealthChange
from app.signals.metrics import metrics_for

log = logging.getLogger(__name__)


@dataclass
class Side:
    """What one rule set would have launched."""

    fires: Counter = field(default_factory=Counter)  # rule -> launches
    matched: Counter = field(default_factory=Counter)  # rule -> matches (before throttle / priority)
    per_csm_week: Counter = field(default_factory=Counter)  # (rule, csm, "2026-W47") -> launches
    _throttle: dict = field(default_factory=lambda: defaultdict(list))


@dataclass
class Report:
    since: datetime
    until: datetime
    events: int
    candidate: Side
    live: Side
    candidate_version: str
    live_version: str

    def rows(self) -> list[dict]:
        names = sorted(
            set(self.candidate.matched) | set(self.live.matched) | set(self.candidate.fires) | set(self.live.fires)
        )
        return [
            {
                "rule": name,
                "candidate": self.candidate.fires[name],
                "live": self.live.fires[name],
                "difference": self.candidate.fires[name] - self.live.fires[name],
                "matched": self.candidate.matched[name],
            }
            for name in names
        ]


def replay(
    candidate: Matcher, live: Matcher, since: datetime, until: datetime, with_metrics: bool = True, batch: int = 2000
) -> Report:
    """Run every stored event in [since, until) through both matchers."""
    report = Report(since, until, 0, Side(), Side(), candidate.ruleset.version, live.ruleset.version)
    accounts: dict[str, Account | None] = {}
    metrics = metrics_for if with_metrics else None
    same = candidate.ruleset.version == live.ruleset.version
    try:
        query = (
            select(Event)
            .where(Event.occurred_at >= since, Event.occurred_at < until)
            .order_by(Event.occurred_at, Event.id)
            .execution_options(yield_per=batch)
        )
        for event in db.session.scalars(query):
            report.events += 1
            account = accounts.get(event.account_id, ...)
            if account is ...:
                account = accounts[event.account_id] = db.session.get(Account, event.account_id)
            if account is None:
                continue
            health = _health(event)
            if health is not None and health["to"] == health["from"]:
                continue  # the same status again is no change: live processing runs no rules either
            facts = stored_event_facts(
                event, account, metrics(account.id, event.occurred_at) if metrics else {}, health
            )
            matched = candidate.match(facts)
            _count(matched, facts, event, account, report.candidate)
            # The same rule set on both sides (a backtest of the live rules) needs one match.
            _count(matched if same else live.match(facts), facts, event, account, report.live)
    finally:
        db.session.rollback()  # no side effects, whatever the metrics code touched
    return report


def _health(event: Event) -> dict | None:
    if event.type != "account.health_changed":
        return None
    change = db.session.execute(select(HealthChange).where(HealthChange.event_id == event.id).limit(1)).scalar()
    health = (event.payload or {}).get("health") or {}
    return {
        "to": change.status if change else health.get("to"),
        "from": change.previous if change else None,
        "crm_from": change.crm_from if change else health.get("from"),
    }


def _count(matched: list, facts: dict, event: Event, account: Account, side: Side) -> None:
    launched: set[str] = set()
    at = event.occurred_at
    iso = at.isocalendar()
    week = f"{iso.year}-W{iso.week:02d}"
    for rule in matched:
        side.matched[rule.name] += 1
        if rule.playbook in launched:
            continue
        if rule.throttle is not None:
            key = (rule.name, throttle_key(rule, facts))
            window = timedelta(seconds=rule.throttle.seconds)
            if any(abs(at - previous) < window for previous in side._throttle[key]):
                continue
            side._throttle[key].append(at)
        launched.add(rule.playbook)
        side.fires[rule.name] += 1
        side.per_csm_week[(rule.name, account.csm or "(no CSM)", week)] += 1


def format_report(report: Report) -> str:
    lines = [
        f"Backtest of {report.events} events from {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d}",
        f"candidate rules {report.candidate_version} against live rules {report.live_version}",
        "",
        f"{'rule':40} {'candidate':>10} {'live':>8} {'diff':>8}",
    ]
    for row in report.rows():
        lines.append(f"{row['rule']:40} {row['candidate']:>10} {row['live']:>8} {row['difference']:>+8}")
    lines += ["", "Candidate launches per CSM per week:", f"{'rule':40} {'csm':30} {'week':10} {'launches':>8}"]
    for (rule, csm, week), count in sorted(report.candidate.per_csm_week.items()):
        lines.append(f"{rule:40} {csm:30} {week:10} {count:>8}")
    return "\n".join(lines)
