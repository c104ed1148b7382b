"""Realistic usage with known churn, for tuning and proving the early warning.

`generate(accounts, days, seed)` returns (events, truth): CONTRACT section 3 events in time
order, and per account whether and when it churned. What it models, from the handbook
(seeds 001, 003, 004): churners' active users and logins decline over the two to three
months before they leave, they stop answering NPS (or answer low), and their support
tickets turn urgent and frustrated. Noise everywhere: weekends, holiday dips that recover,
slow growth and slow shrink in healthy accounts, a few healthy accounts with a bad month,
detractors who stay, and churners who leave with little warning.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

START = datetime(2026, 1, 5, tzinfo=UTC)
HAPPY = [
    "Thanks, the new dashboard works great",
    "Quick question about exports, love the product",
    "How do I add a user? Thanks!",
    "Small issue with a filter, otherwise all good",
]
NEUTRAL = [
    "Question about the API limits",
    "Report looks different since the update",
    "Need help with the SSO setup",
    "Invoice address needs a change",
]
ANGRY = [
    "Export is broken again, this is unacceptable and we are very frustrated",
    "Third outage this month, our team is angry and considering alternatives",
    "Terrible support experience, still waiting for a fix after weeks",
    "The translations are wrong again, this is hurting us badly",
]


@dataclass
class Truth:
    account_id: str
    churn_day: int | None  # day index of leaving; None: retained
    silent: bool = False  # a churner who leaves with little warning in the data


def generate(accounts: int = 200, days: int = 200, seed: int = 11, churn_share: float = 0.2):
    rng = random.Random(seed)
    events, truths = [], []
    for index in range(accounts):
        account_id = f"sim-{index:04d}"
        churns = rng.random() < churn_share
        churn_day = rng.randint(days - 80, days - 5) if churns else None
        silent = churns and rng.random() < 0.15
        decline_days = rng.randint(45, 100)
        base = rng.lognormvariate(math.log(60), 0.8)
        trend = rng.uniform(-0.12, 0.2)  # healthy accounts drift too
        bad_month = (not churns) and rng.random() < 0.12
        bad_start = rng.randint(60, days - 40)
        holiday = rng.randint(20, days - 20)
        last_day = churn_day if churns else days
        for day in range(last_day):
            level = base * (1 + trend * day / days)
            if churns and not silent and day > churn_day - decline_days:
                progress = (day - (churn_day - decline_days)) / decline_days
                level *= 1 - 0.6 * progress
            if bad_month and bad_start <= day < bad_start + 25:
                level *= 0.7
            if holiday <= day < holiday + 7:
                level *= 0.65
            weekday = (START + timedelta(days=day)).weekday()
            if weekday >= 5:
                level *= 0.45
            active = max(0, round(level * rng.uniform(0.85, 1.15)))
            logins = max(0, round(active * rng.uniform(1.6, 2.6)))
            at = START + timedelta(days=day, hours=23)
            events.append(
                _event(
                    account_id,
                    "usage.daily",
                    at,
                    f"d{day}",
                    active_users=active,
                    logins=logins,
                    features={"reporting": rng.randint(0, active), "export": rng.randint(0, active // 2)},
                )
            )
            if day % 90 == 45:  # a quarterly NPS survey
                declining = churns and not silent and day > churn_day - decline_days
                answers = rng.random() < (0.3 if declining else 0.7)
                if answers:
                    score = rng.randint(0, 6) if declining or rng.random() < 0.15 else rng.randint(7, 10)
                    events.append(_event(account_id, "feedback.nps", at, f"n{day}", score=score))
            ticket_rate = 0.05 if not (churns and not silent and day > churn_day - decline_days) else 0.09
            if rng.random() < ticket_rate:
                angry = churns and not silent and day > churn_day - decline_days and rng.random() < 0.6
                text = rng.choice(ANGRY if angry else (NEUTRAL if rng.random() < 0.5 else HAPPY))
                severity = rng.choice(["high", "urgent"]) if angry else rng.choice(["low", "normal", "normal", "high"])
                events.append(
                    _event(account_id, "support.ticket", at, f"t{day}", severity=severity, subject=text[:40], body=text)
                )
        truths.append(Truth(account_id, churn_day, silent))
    events.sort(key=lambda e: e["occurred_at"])
    return events, truths


def _event(account_id: str, kind: str, at: datetime, suffix: str, **properties) -> dict:
    return {
        "id": f"{account_id}-{suffix}-{kind}",
        "account_id": account_id,
        "type": kind,
        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "properties": properties,
    }


def day_of(at: datetime) -> int:
    return (at - START).days
