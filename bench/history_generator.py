"""A year of realistic product usage with known churn, streamed: for load benchmarks and for honest AUCs.

    python bench/history_generator.py --accounts 3000 --days 270 --seed 1 --out DIR \\
        [--format jsonl|csv] [--integration active-days|every-day|mixed] [--start 2026-01-01]

Writes DIR/events.jsonl (or events.csv: id, account_id, type, occurred_at, properties as a JSON
object), DIR/labels.csv (`account_id,churn_date`, churners only) and DIR/accounts.jsonl (segment,
plan, ARR, dates, contacts and contact changes), then prints a summary. Importable:
`generate(...)` yields the CONTRACT section 3 events in occurred_at order, `labels(...)` gives
the churn dates without generating any event.

Why another simulator: bench/usage_simulator.py builds the churn signal in (a linear decline
before a fixed churn day), so a scorecard tuned on it measures the simulator. Here churn is not
scripted. Every account has a latent health that no event carries; usage, feedback, tickets and
churn are separate noisy consequences of it, and a good part of churn has nothing to do with it.
A health score can only approximate what it is, as in real data. Tune a scorecard on one seed and
report on another: seeds give independent populations (same laws, different accounts and paths).

The model (handbook seeds 001-004), per account and day, in event time:

- Latent health h: a mean-reverting random walk (Ornstein-Uhlenbeck) towards the account's own
  level mu ~ N(0.4, 0.7): h += THETA (mu - h) + SIGMA N(0, 1), THETA = 1/25 (a dip halves in about
  17 days: accounts dip and recover), SIGMA = 0.14 (day-to-day drift, sd about 0.5 around mu).
  Shocks (a bad release, a budget cut, a reorg) at 1/180 per day, 80% negative (about -1.0),
  20% positive: the source of retained accounts with a bad month.
- Churn is a decision, then a notice period. The daily hazard of deciding to leave is LEAVE_BASE
  exp(-LEAVE_BETA h) (health-driven; LEAVE_BETA = 1.2, so h = -1 is 5x the risk of h = +0.4) plus
  ABRUPT_BASE that ignores health (acquired, bankrupt, budget gone), both times a tenure factor
  1 + 3 exp(-tenure / 60) (risk highest in the first months, seed 001: duration correlates with
  retention), 2.5x in the 45 days before an annual renewal (0.6x otherwise), and 3x for 180 days
  after the decision maker was replaced (seed 001: a new point of contact is a red flag;
  replacements at 1/1100 a day, 1.6x when h < 0, so about 24% of teams that churn had one in their
  last 180 days against 16% of retained teams in theirs). 85% of health-driven leavers then
  disengage over 21-84 days (health pulled down by up to 1.6, activity falling to 10-70% of
  normal, bulk exports in the last three weeks, fewer survey answers, angrier tickets); the rest,
  and all the health-blind ones, leave within 0-4 days with no warning in the data (some of those
  with a failed payment first). The subscription ends on churn_date; nothing is sent after it
  except, for some accounts, 1-3 days of a straggler or two (TRICKLE_DAYS). A leaver whose
  churn_date falls after the history is not labelled, as in real exports (censoring). Result:
  21-23% of accounts churn over 270 days (seeds 1-4), about a third of them abruptly.
- Sizes and segments: consumer (one user, monthly, weekends as busy as weekdays), small_team
  (2-10 seats, mostly monthly), team (10-50 seats, annual). 25% of accounts start during the
  history: onboarding ramp (users added over the first two months, engagement rising over four
  weeks), the highest churn risk.
- Observations, each with its own noise: active users ~ Binomial(users, sigmoid(engagement +
  0.9 h) x calendar x mood) where engagement is the account's own habit (absolute usage says
  little; its change says more); logins; eight features, five useful (dashboard, report,
  message, share, export; deeper ones rise with health) and three negative ones whose rates rise
  as health falls (dislike, remove_member: users leaving the team, export_all: bulk export, also
  done by healthy accounts as backups). Happiness answers (seed 002: prompted monthly per user,
  about 35% answer) and quarterly NPS waves per user, both from h plus a per-user temperament
  and noise; support tickets whose rate, severity and tone rise as h falls; failed payments on
  billing days; seats bought when full and healthy, cut at renewal when unused.
- Quiet that means nothing: weekends (teams at 10-35%), public holidays and August, vacations of
  small accounts (4-16 days near zero, 1/110 per day), busy months (14-35 days at 35-70%),
  integration outages (1-10 days with no usage data: zero rows in every-day mode, no rows in
  active-days mode) at 1/500 per day, for healthy and unhealthy accounts alike.

Integration modes: `every-day` sends a usage.daily row for every live day, zeros included;
`active-days` only for days with activity (the usual export); `mixed` picks per account (40%
every-day). Event ids are `h{seed}-{account number}-{day}-{n}`, stable for a seed.

Streaming: one day of all accounts is built, sorted and yielded at a time (about 6,000 events at
3,000 accounts), so memory grows with accounts, not with events.

How hard it is to predict (seed 2, 3,000 accounts, 270 days, monthly observations as in CONTRACT
section 7): single indicators rank churners with AUC 0.54-0.66 (logins over 7 days 0.66, happiness
0.66, active users 30 days 0.62, their change 0.62, NPS 0.62, bad tickets 0.54); a logistic
regression of nine of them fitted in-sample on the same data reaches 0.75. Real churn models
usually land between 0.65 and 0.8, which is the point.

Measured on the 2-core VM, Python 3.11: `time .venv/bin/python bench/history_generator.py --accounts
3000 --days 270 --seed 1 --out /tmp/hist` takes 23.5 s wall (23-31 s over runs, the machine being
shared) for 638,393 account-days and 1,706,838 events (churners 675, 22.5%), about 73,000 events/s
written as JSON lines; CSV is about 7% slower. Peak RSS 37 MB, the same with --days 540 (3.0 million
events); 9,000 accounts (5.1 million events) peak at 75 MB. labels() alone takes about 2 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from random import Random

START = date(2026, 1, 1)
TRICKLE_DAYS = 3  # a churned account may still send a little for this many days from churn_date
INTEGRATIONS = ("active-days", "every-day", "mixed")

THETA, SIGMA = 1 / 25, 0.14  # health: pull towards mu per day, daily noise
SHOCK_RATE = 1 / 180
LEAVE_BASE, LEAVE_BETA = 6.5e-4, 1.2  # health-driven daily hazard of deciding to leave
ABRUPT_BASE = 2.0e-4  # health-blind daily hazard (acquisition, bankruptcy, budget gone)
GRADUAL_SHARE = 0.85  # of health-driven leavers, those who disengage for weeks first
LEAVING_PULL = 1.6  # how far a disengaging leaver's health target falls by churn_date
DM_RATE, DM_RISK, DM_RISK_DAYS = 1 / 1100, 3.0, 180
VACATION_RATE, OUTAGE_RATE, BUSY_RATE = 1 / 110, 1 / 500, 1 / 300
EVERY_DAY_SHARE = 0.4  # in mixed mode

FEATURES = ("dashboard", "report", "message", "share", "export", "dislike", "remove_member", "export_all")
TRACKED = ("report", "share", "export_all")  # also sent one use at a time as usage.feature_used
# uses per active user per day at h = 0, and how strongly each rises with health
FEATURE_RATES = {
    "dashboard": (2.2, 0.15),
    "report": (0.35, 0.35),
    "message": (3.5, 0.2),
    "share": (0.15, 0.45),
    "export": (0.12, 0.0),
}


@dataclass(frozen=True)
class Segment:
    name: str
    share: float
    seats: tuple[int, int]
    plan: str
    price: int  # per seat and month
    annual_share: float


SEGMENTS = (
    Segment("consumer", 0.35, (1, 1), "personal", 12, 0.0),
    Segment("small_team", 0.40, (2, 10), "team", 25, 0.3),
    Segment("team", 0.25, (10, 50), "business", 40, 1.0),
)
UTC_OFFSETS = (-8, -5, -5, 0, 1, 1, 2, 5.5, 9, 10)
FIRST = (
    "Ana",
    "Ben",
    "Chloe",
    "Dev",
    "Eva",
    "Femi",
    "Gus",
    "Hana",
    "Ivan",
    "Jia",
    "Kofi",
    "Lena",
    "Mo",
    "Nora",
    "Omar",
    "Pia",
    "Quinn",
    "Raj",
    "Sara",
    "Tom",
    "Uma",
    "Vik",
    "Wen",
    "Yara",
    "Zoe",
)
LAST = (
    "Adams",
    "Berg",
    "Costa",
    "Diaz",
    "Evans",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kim",
    "Lopez",
    "Moreau",
    "Novak",
    "Okafor",
    "Patel",
    "Rossi",
    "Silva",
    "Tanaka",
    "Weber",
    "Young",
)
COMPANY = (
    "Northwind",
    "Bluefin",
    "Cedar",
    "Lumen",
    "Brightside",
    "Kestrel",
    "Orbit",
    "Juniper",
    "Harbor",
    "Atlas",
    "Pioneer",
    "Maple",
    "Summit",
    "Vertex",
    "Willow",
    "Ember",
    "Granite",
    "Meadow",
)
KIND = ("Analytics", "Labs", "Studio", "Logistics", "Health", "Foods", "Media", "Partners", "Works", "Systems")
TICKETS = {
    "good": [
        "Thanks, quick question about report filters",
        "How do I add a colleague? Love the tool",
        "Feature idea: dark mode, great work so far",
        "Small question about the API, all good otherwise",
    ],
    "neutral": [
        "Question about API rate limits",
        "Report looks different since the update",
        "Need help with the SSO setup",
        "Invoice address needs a change",
        "CSV export has odd dates",
    ],
    "bad": [
        "Export is broken again, this is unacceptable",
        "Third outage this month, we are very frustrated",
        "Still waiting for a fix after two weeks, terrible support",
        "Sync keeps failing, team is angry",
        "Dashboard too slow to use, considering alternatives",
        "Data missing from reports, hurting us badly",
    ],
}
NPS_COMMENTS = {
    "promoter": ["Great product, the team loves it", "Saves us hours every week", "Support is excellent"],
    "passive": ["Does the job", "Fine, a bit pricey", "Reports could be more flexible"],
    "detractor": ["Too many bugs lately", "Slow and unreliable", "We are looking at other tools", "Too expensive"],
}
HAPPINESS = ("not_happy", "neutral", "happy", "very_happy")


@dataclass(slots=True)
class Account:
    """One customer: what it is, its latent state today, and what happened to it (the truth)."""

    index: int
    id: str
    name: str
    segment: Segment
    billing: str  # monthly | annual
    since: date
    since_day: int  # day index of customer_since (negative: before the history)
    start_day: int  # first day in the history
    seats: int
    users: list  # [user_id, temperament, joined_day]
    next_user: int
    mu: float
    health: float
    engagement: float  # the account's own habit, on the logit scale
    weekend: float  # weekend activity relative to a weekday
    affinity: dict  # feature -> taste multiplier (0: never adopted)
    utc_offset: float
    nps_phase: int
    integration: str
    reports_seats: bool
    next_bill: int  # day index of the next billing date
    next_renewal: int  # day index of the next annual renewal (monthly: = next_bill)
    decision_maker: str
    champion: str | None
    people: dict = field(default_factory=dict)  # contact id -> record
    changes: list = field(default_factory=list)  # contact changes, with dates
    dm_changed_day: int = -(10**6)
    decided_day: int | None = None
    churn_day: int | None = None
    abrupt: bool = False
    distress: bool = False  # an abrupt leaver whose payments fail first
    floor: float = 1.0  # activity share left at churn_date for a disengaging leaver
    trickle: int = 0
    vacation_until: int = -1
    outage_until: int = -1
    busy_until: int = -1
    busy_factor: float = 1.0
    added: int = 0  # today's latent happenings, reported by the emitter
    removed: int = 0
    seats_from: int = 0
    bill_today: bool = False
    bill_months: int = 1  # months billed today: 12 at an annual renewal
    gone: bool = False
    live_days: int = 0


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def poisson(rng: Random, mean: float) -> int:
    """Knuth's method for small means (exact), a rounded normal for large ones (fast)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        product *= rng.random()
        k += 1
    return k


def binomial(rng: Random, n: int, p: float) -> int:
    if p <= 0 or n <= 0:
        return 0
    if n <= 12:
        return sum(rng.random() < p for _ in range(n))
    mean = n * p
    return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def easter(year: int) -> date:
    """Anonymous Gregorian algorithm."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    return date(year, (h + m - 7 * n + 114) // 31, (h + m - 7 * n + 114) % 31 + 1)


def holidays(year: int) -> set[date]:
    """Days most offices are closed in the markets modelled (a blend of EU and US holidays)."""
    thanksgiving = date(year, 11, 1) + timedelta(days=(3 - date(year, 11, 1).weekday()) % 7 + 21)
    fixed = {date(year, 1, 1), date(year, 5, 1), date(year, 7, 4), date(year, 12, 31)}
    fixed |= {date(year, 12, d) for d in range(24, 27)}
    return fixed | {easter(year) - timedelta(days=2), easter(year) + timedelta(days=1), thanksgiving}


@dataclass(frozen=True, slots=True)
class Day:
    prefix: str  # "2026-01-01T"
    iso: str
    weekend: bool
    holiday: bool
    august: bool


def calendar(start: date, days: int) -> list[Day]:
    closed = set().union(*(holidays(y) for y in range(start.year, (start + timedelta(days=days)).year + 1)))
    out = []
    for index in range(days):
        day = start + timedelta(days=index)
        out.append(Day(day.isoformat() + "T", day.isoformat(), day.weekday() >= 5, day in closed, day.month == 8))
    return out


class History:
    """The population and its day-by-day simulation. Two random streams: `latent` drives what is
    true (health, churn, users, seats, contacts, quiet stretches) and never depends on what was
    observed, so labels() can run it alone; `observe` draws the events from it."""

    def __init__(self, accounts: int, days: int, seed: int, start: date = START, integration: str = "active-days"):
        if integration not in INTEGRATIONS:
            raise ValueError(f"integration is one of {', '.join(INTEGRATIONS)}")
        self.days, self.seed, self.start = days, seed, start
        self.latent = Random(f"history-{seed}-latent")
        self.observe = Random(f"history-{seed}-observe")
        modes = Random(f"history-{seed}-integration")
        self.calendar = calendar(start, days)
        self.accounts = []
        for index in range(accounts):
            mode = (
                integration
                if integration != "mixed"
                else ("every-day" if modes.random() < EVERY_DAY_SHARE else "active-days")
            )
            self.accounts.append(self._new_account(index, mode))
        self.account_days = 0

    # -- the population ------------------------------------------------------------------

    def _new_account(self, index: int, integration: str) -> Account:
        rng = self.latent
        roll, segment = rng.random(), SEGMENTS[-1]
        for candidate in SEGMENTS:
            if roll < candidate.share:
                segment = candidate
                break
            roll -= candidate.share
        if rng.random() < 0.25:  # joins during the history
            since_day = rng.randint(0, max(0, int(self.days * 0.85)))
            start_day = since_day
        else:  # tenure at the start: many young accounts, a long tail of old ones
            since_day = -(20 + int(rng.expovariate(1 / 420)))
            start_day = 0
        since = self.start + timedelta(days=since_day)
        low, high = segment.seats
        seats = low if low == high else int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))
        account_id = f"hist-{index + 1:05d}"
        new = since_day >= 0
        user_count = seats if not new else max(1, round(seats * rng.uniform(0.1, 0.4)))
        if not new and segment.name != "consumer":
            user_count = max(1, round(seats * rng.uniform(0.6, 1.0)))
        mu = rng.gauss(0.4, 0.7)
        annual = rng.random() < segment.annual_share
        account = Account(
            index=index,
            id=account_id,
            name=self._company_name(rng, segment, account_id),
            segment=segment,
            billing="annual" if annual else "monthly",
            since=since,
            since_day=since_day,
            start_day=start_day,
            seats=seats,
            users=[],
            next_user=1,
            mu=mu,
            health=mu + rng.gauss(-0.2 if new else 0, 0.5),
            engagement=rng.gauss(0.3, 0.6),
            weekend=rng.uniform(0.7, 1.1) if segment.name == "consumer" else rng.uniform(0.1, 0.35),
            affinity=self._affinity(rng, segment),
            utc_offset=rng.choice(UTC_OFFSETS),
            nps_phase=rng.randrange(90),
            integration=integration,
            reports_seats=rng.random() < 0.6,
            next_bill=0,
            next_renewal=0,
            decision_maker="",
            champion=None,
        )
        account.next_bill = self._next_date(account, 1, start_day)
        account.next_renewal = self._next_date(account, 12 if annual else 1, start_day)
        for _ in range(user_count):
            self._add_user(account, since_day if new else min(since_day, -1))
        self._first_contacts(account)
        return account

    @staticmethod
    def _company_name(rng: Random, segment: Segment, account_id: str) -> str:
        if segment.name == "consumer":
            return f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        return f"{rng.choice(COMPANY)} {rng.choice(KIND)}"

    @staticmethod
    def _affinity(rng: Random, segment: Segment) -> dict:
        """Which features this customer uses and how much: accounts differ in taste, not only in health."""
        taste = {}
        for name in FEATURE_RATES:
            adopted = name == "dashboard" or rng.random() < 0.8
            if name == "message" and segment.name == "consumer":
                adopted = False
            taste[name] = rng.lognormvariate(0, 0.5) if adopted else 0.0
        return taste

    def _next_date(self, account: Account, months: int, after_day: int) -> int:
        """Day index of the first billing (or renewal) anniversary of customer_since on or after after_day."""
        step = 1
        while True:
            index = (add_months(account.since, months * step) - self.start).days
            if index >= after_day:
                return index
            step += 1

    def _add_user(self, account: Account, day: int) -> str:
        user_id = f"{account.id}-u{account.next_user}"
        account.next_user += 1
        account.users.append([user_id, self.latent.gauss(0, 0.6), day])
        account.people[user_id] = {"id": user_id, "role": "user", "user_id": user_id, "since": day, "until": None}
        return user_id

    def _first_contacts(self, account: Account) -> None:
        first_user = account.users[0][0]
        if account.segment.name == "consumer" or self.latent.random() < 0.3:
            account.decision_maker = first_user  # the buyer also uses the product
            account.people[first_user]["role"] = "decision_maker"
        else:
            account.decision_maker = self._new_contact(account, "decision_maker", account.since_day)
        if account.segment.name != "consumer":
            candidates = [u[0] for u in account.users if u[0] != account.decision_maker]
            if candidates:
                account.champion = candidates[0]
                account.people[account.champion]["role"] = "champion"

    def _new_contact(self, account: Account, role: str, day: int) -> str:
        contact_id = f"{account.id}-c{len(account.people) + 1}"
        account.people[contact_id] = {"id": contact_id, "role": role, "user_id": None, "since": day, "until": None}
        return contact_id

    # -- the simulation ------------------------------------------------------------------

    def events(self) -> Iterator[dict]:
        """Every event, day by day across accounts, in occurred_at order."""
        by_start: dict[int, list[Account]] = {}
        for account in self.accounts:
            by_start.setdefault(account.start_day, []).append(account)
        live: list[Account] = []
        sequence = 0
        for day in range(self.days):
            live.extend(by_start.get(day, ()))
            batch: list = []
            for account in live:
                self._step(account, day)
                if not account.gone:
                    sequence = self._emit(account, day, batch, sequence)
            live = [a for a in live if not a.gone]
            batch.sort(key=lambda item: (item[0], item[1]))
            for _, _, event in batch:
                yield event

    def run_latent(self) -> None:
        """Only the truth (no events): what labels() needs, several times faster."""
        live: list[Account] = []
        by_start: dict[int, list[Account]] = {}
        for account in self.accounts:
            by_start.setdefault(account.start_day, []).append(account)
        for day in range(self.days):
            live.extend(by_start.get(day, ()))
            for account in live:
                self._step(account, day)
            live = [a for a in live if not a.gone]

    def _step(self, a: Account, day: int) -> None:
        """One day of the latent truth for a live account."""
        rng = self.latent
        a.added = a.removed = 0
        a.seats_from = a.seats
        a.bill_today, a.bill_months = False, 1
        if a.churn_day is not None and day >= a.churn_day:
            a.gone = day >= a.churn_day + a.trickle
            return
        a.live_days += 1
        self.account_days += 1
        tenure = day - a.since_day
        target = a.mu
        if a.churn_day is not None and not a.abrupt:
            target -= LEAVING_PULL * self._progress(a, day)
        a.health += THETA * (target - a.health) + SIGMA * rng.gauss(0, 1)
        if rng.random() < SHOCK_RATE:
            a.health += rng.gauss(-1.0, 0.5) if rng.random() < 0.8 else rng.gauss(0.6, 0.3)
        if a.segment.name != "consumer" and rng.random() < DM_RATE * (1.6 if a.health < 0 else 1.0):
            self._replace_decision_maker(a, day)
        if a.churn_day is None:
            self._maybe_decide_to_leave(a, day, tenure)
        self._quiet_stretches(a, day)
        self._billing(a, day)
        self._team(a, day, tenure)

    def _progress(self, a: Account, day: int) -> float:
        return min(1.0, (day - a.decided_day) / max(1, a.churn_day - a.decided_day))

    def _risk(self, a: Account, day: int, tenure: int) -> float:
        risk = 1 + 3 * math.exp(-max(0, tenure) / 60)
        if a.billing == "annual":
            risk *= 2.5 if 0 <= a.next_renewal - day <= 45 else 0.6
        return risk

    def _maybe_decide_to_leave(self, a: Account, day: int, tenure: int) -> None:
        rng = self.latent
        risk = self._risk(a, day, tenure)
        health_driven = LEAVE_BASE * math.exp(-LEAVE_BETA * a.health) * risk
        if day - a.dm_changed_day < DM_RISK_DAYS:
            health_driven *= DM_RISK
        blind = ABRUPT_BASE * risk
        roll = rng.random()
        if roll >= health_driven + blind:
            return
        a.decided_day = day
        a.abrupt = roll >= health_driven or rng.random() >= GRADUAL_SHARE
        if a.abrupt:
            a.churn_day = day + rng.randint(0, 4)
            a.distress = roll >= health_driven and rng.random() < 0.4
        else:
            a.churn_day = day + rng.randint(21, 84)
            a.floor = rng.uniform(0.1, 0.7)
        a.trickle = rng.choice((0, 0, 1, 2, TRICKLE_DAYS))

    def _replace_decision_maker(self, a: Account, day: int) -> None:
        old = a.decision_maker
        a.people[old]["until"] = day
        if a.people[old]["user_id"] is None:
            new = self._new_contact(a, "decision_maker", day)
        else:  # the buyer who used the product leaves the role; a new buyer arrives from outside
            a.people[old]["role"] = "user"
            a.people[old]["until"] = None
            new = self._new_contact(a, "decision_maker", day)
        a.decision_maker, a.dm_changed_day = new, day
        a.changes.append({"date": day, "role": "decision_maker", "change": "replaced", "from": old, "to": new})
        a.health += self.latent.gauss(-0.3, 0.3)

    def _quiet_stretches(self, a: Account, day: int) -> None:
        rng = self.latent
        if day >= a.vacation_until and len(a.users) <= 3 and rng.random() < VACATION_RATE:
            a.vacation_until = day + rng.randint(4, 16)
        if day >= a.outage_until and rng.random() < OUTAGE_RATE:
            a.outage_until = day + rng.randint(1, 10)
        if day >= a.busy_until and rng.random() < BUSY_RATE:
            a.busy_until, a.busy_factor = day + rng.randint(14, 35), rng.uniform(0.35, 0.7)

    def _billing(self, a: Account, day: int) -> None:
        if day == a.next_bill:
            a.bill_today = a.billing == "monthly"
            a.next_bill = self._next_date(a, 1, day + 1)
        if day == a.next_renewal:
            a.bill_today, a.bill_months = True, 12 if a.billing == "annual" else 1
            if len(a.users) < a.seats * 0.75 and self.latent.random() < 0.5:
                a.seats = max(len(a.users), 1)  # unused seats are cut at renewal
            a.next_renewal = self._next_date(a, 12 if a.billing == "annual" else 1, day + 1)

    def _team(self, a: Account, day: int, tenure: int) -> None:
        """Users join (onboarding, growth) and leave (turnover, more when unhealthy or leaving); seats follow."""
        if a.segment.name == "consumer":
            return
        rng = self.latent
        count = len(a.users)
        if count < a.seats:
            rate = (0.10 if tenure < 60 else 0.012) * sigmoid(1.5 * a.health)
            if rng.random() < rate:
                for _ in range(min(a.seats - count, rng.randint(1, 3))):
                    self._add_user(a, day)
                    a.added += 1
        elif a.health > 0.3 and rng.random() < 0.01:
            a.seats += rng.randint(1, max(1, a.seats // 5))  # full and happy: buys seats
        leave_rate = count * (0.0006 + 0.0015 * sigmoid(-2 * a.health))
        if a.churn_day is not None and not a.abrupt:
            leave_rate += 0.03 * self._progress(a, day)
        if count > 1 and rng.random() < leave_rate:
            for _ in range(rng.choice((1, 1, 1, 2))):
                self._remove_user(a, day)

    def _remove_user(self, a: Account, day: int) -> None:
        leavers = [u for u in a.users if u[0] != a.decision_maker]
        if len(a.users) <= 1 or not leavers:
            return
        user = leavers[self.latent.randrange(len(leavers))]
        a.users.remove(user)
        a.people[user[0]]["until"] = day
        a.removed += 1
        if user[0] == a.champion:
            champion = a.users[self.latent.randrange(len(a.users))][0] if a.users else None
            if champion == a.decision_maker:
                champion = None
            a.changes.append({"date": day, "role": "champion", "change": "left", "from": user[0], "to": champion})
            a.champion = champion
            if champion:
                a.people[champion]["role"] = "champion"
            a.health += self.latent.gauss(-0.4, 0.3)

    # -- the observations ----------------------------------------------------------------

    def _emit(self, a: Account, day: int, batch: list, sequence: int) -> int:
        """Draw the day's events for one account into batch as (seconds, sequence, event)."""
        rng, cal = self.observe, self.calendar[day]
        trickle = a.churn_day is not None and day >= a.churn_day
        n = 0

        def add(kind: str, second: int, properties: dict) -> None:
            nonlocal n, sequence
            batch.append(
                (
                    second,
                    sequence,
                    {
                        "id": f"h{self.seed}-{a.index + 1:05d}-{day}-{n}",
                        "account_id": a.id,
                        "type": kind,
                        "occurred_at": f"{cal.prefix}{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z",
                        "properties": properties,
                    },
                )
            )
            n += 1
            sequence += 1

        factor = self._calendar_factor(a, cal)
        if day < a.vacation_until:
            factor *= 0.03
        if day < a.busy_until:
            factor *= a.busy_factor
        leaving = a.churn_day is not None and not a.abrupt and not trickle
        progress = self._progress(a, day) if leaving else 0.0
        if leaving:
            factor *= 1 - (1 - a.floor) * progress
        if trickle:
            factor *= 0.1
        tenure = day - a.since_day
        if tenure < 28:
            factor *= 0.35 + tenure / 43
        health = a.health
        mood = math.exp(rng.gauss(0, 0.25))
        p_active = min(0.97, sigmoid(a.engagement + 0.9 * health) * factor * mood)
        active = binomial(rng, len(a.users), p_active)
        if a.removed and not active:
            active = 1  # someone removed the members
        logins = active + poisson(rng, active * (0.3 + 0.8 * sigmoid(health)) * mood)
        uses = {}
        for name, (rate, lift) in FEATURE_RATES.items():
            taste = a.affinity[name]
            if taste and active:
                count = poisson(rng, active * rate * taste * math.exp(lift * health) * mood)
                if count:
                    uses[name] = count
        dislike = poisson(rng, active * (0.015 * math.exp(-0.9 * health) + 0.03 * progress))
        if dislike:
            uses["dislike"] = dislike
        if a.removed:
            uses["remove_member"] = a.removed
        bulk = 0.0015 + 0.004 * sigmoid(-2 * health)
        if leaving and a.churn_day - day <= 21:
            bulk += 0.12
        if active and rng.random() < bulk:
            uses["export_all"] = rng.randint(1, 3)
        outage = day < a.outage_until
        if not outage or a.integration == "every-day":
            if outage:
                active, logins, uses = 0, 0, {}
            if active or logins or uses or a.integration == "every-day":
                properties = {"active_users": active, "logins": logins, "features": uses}
                if a.reports_seats:
                    properties["seats"] = a.seats
                add("usage.daily", 0, properties)
        if active and not outage:
            for name in TRACKED:
                for _ in range(uses.get(name, 0)):
                    add(
                        "usage.feature_used",
                        self._second(a, rng),
                        {"feature": name, "user_id": a.users[rng.randrange(len(a.users))][0]},
                    )
        if trickle:
            return sequence
        if a.added:
            add("users.added", self._second(a, rng), {"count": a.added})
        if a.seats != a.seats_from:
            add("seats.changed", self._second(a, rng), {"from": a.seats_from, "to": a.seats})
        self._feedback(a, day, rng, add, factor, progress)
        self._tickets(a, day, rng, add, cal, progress)
        if a.bill_today and rng.random() < 0.02 + 0.08 * sigmoid(-2 * health) + (0.3 if a.distress else 0):
            amount = round(a.seats * a.segment.price * a.bill_months * (0.85 if a.billing == "annual" else 1), 2)
            add("billing.payment_failed", self._second(a, rng), {"amount": amount, "currency": "USD"})
        return sequence

    @staticmethod
    def _calendar_factor(a: Account, cal: Day) -> float:
        factor = a.weekend if cal.weekend else 1.0
        if a.segment.name == "consumer":
            return factor * (0.85 if cal.holiday else 1.0)
        return factor * (0.25 if cal.holiday else 1.0) * (0.85 if cal.august else 1.0)

    @staticmethod
    def _second(a: Account, rng: Random) -> int:
        """A second of the UTC day: office hours for teams, evenings too for consumers, in the account's time zone."""
        evening = a.segment.name == "consumer" and rng.random() < 0.5
        local = rng.uniform(17, 23) if evening else rng.triangular(8, 18, 11)
        return int(((local - a.utc_offset) % 24) * 3600) % 86400 or 1

    def _feedback(self, a: Account, day: int, rng: Random, add, factor: float, progress: float) -> None:
        """Happiness answers (prompted monthly per user) and NPS waves (quarterly), per user."""
        reachable = len(a.users) * min(1.0, 0.4 + factor)
        answers = poisson(rng, reachable * 0.012 * (1 - 0.5 * progress))
        for _ in range(answers):
            user_id, temperament, _ = a.users[rng.randrange(len(a.users))]
            mood = a.health + temperament + rng.gauss(0, 0.8) - 0.8 * progress
            level = 3 if mood > 1.2 else 2 if mood > 0.1 else 1 if mood > -0.8 else 0
            add("feedback.happiness", self._second(a, rng), {"level": HAPPINESS[level], "user_id": user_id})
        if (day - a.nps_phase) % 90 >= 10:
            return
        share = (0.35 if a.segment.name == "consumer" else 0.12 + 0.15 * sigmoid(a.health)) * (1 - 0.6 * progress)
        for _ in range(poisson(rng, len(a.users) * share / 10)):
            user_id, temperament, _ = a.users[rng.randrange(len(a.users))]
            score = max(0, min(10, round(7.3 + 1.6 * a.health + 1.5 * temperament + rng.gauss(0, 1.6) - 2 * progress)))
            properties = {"score": score, "user_id": user_id}
            if rng.random() < 0.3:
                kind = "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
                properties["comment"] = rng.choice(NPS_COMMENTS[kind])
            add("feedback.nps", self._second(a, rng), properties)

    def _tickets(self, a: Account, day: int, rng: Random, add, cal: Day, progress: float) -> None:
        trouble = sigmoid(-1.5 * a.health + 2 * progress)
        rate = (0.015 + 0.01 * math.sqrt(len(a.users))) * (0.6 + 1.2 * trouble) * (0.4 if cal.weekend else 1.0)
        for _ in range(poisson(rng, rate)):
            tone = rng.random()
            tone = "bad" if tone < 0.1 + 0.5 * trouble else "neutral" if tone < 0.45 + 0.45 * trouble else "good"
            roll = rng.random()
            severity = (
                "urgent"
                if roll < 0.03 + 0.2 * trouble
                else "high"
                if roll < 0.15 + 0.3 * trouble
                else "normal"
                if roll < 0.6 + 0.2 * trouble
                else "low"
            )
            text = rng.choice(TICKETS[tone])
            properties = {"severity": severity, "subject": text}
            if rng.random() < 0.7:
                properties["body"] = f"{text}. Account {a.name}, {len(a.users)} users."
            add("support.ticket", self._second(a, rng), properties)

    # -- the truth, for files --------------------------------------------------------------

    def churn_dates(self) -> dict[str, date]:
        """account id -> churn_date, for churn_dates inside the history (later ones are not seen yet)."""
        return {
            a.id: self.start + timedelta(days=a.churn_day)
            for a in self.accounts
            if a.churn_day is not None and a.churn_day < self.days
        }

    def account_records(self) -> Iterator[dict]:
        for a in self.accounts:
            seats_arr = a.seats * a.segment.price * 12 * (0.85 if a.billing == "annual" else 1)
            yield {
                "id": a.id,
                "name": a.name,
                "segment": a.segment.name,
                "plan": a.segment.plan,
                "billing": a.billing,
                "seats": a.seats,
                "arr": round(seats_arr, 2),
                "customer_since": a.since.isoformat(),
                "renewal_date": self._renewal_date(a).isoformat(),
                "contacts": [self._contact(a, person) for person in a.people.values()],
                "contact_changes": [dict(change, date=self._iso(change["date"])) for change in a.changes],
            }

    def _renewal_date(self, a: Account) -> date:
        """End of the current term as of the account's last day: the day it ends for a churner."""
        last = min(a.churn_day, self.days - 1) if a.churn_day is not None else self.days - 1
        return self.start + timedelta(days=self._next_date(a, 12 if a.billing == "annual" else 1, last))

    def _contact(self, a: Account, person: dict) -> dict:
        first, last = (
            FIRST[zlib.crc32(person["id"].encode()) % len(FIRST)],
            LAST[zlib.crc32(person["id"][::-1].encode()) % len(LAST)],
        )
        if a.segment.name == "consumer" and person["id"] == a.users[0][0]:
            first, last = a.name.split(" ", 1)
        domain = "example.com" if a.segment.name == "consumer" else a.name.lower().replace(" ", "-") + ".example"
        local = f"{first}.{last}.{person['id'].rsplit('-', 1)[1]}".lower()
        return {
            "id": person["id"],
            "name": f"{first} {last}",
            "email": f"{local}@{domain}",
            "role": person["role"],
            "user_id": person["user_id"],
            "since": self._iso(max(person["since"], a.since_day)),
            "until": None if person["until"] is None else self._iso(person["until"]),
        }

    def _iso(self, day: int) -> str:
        return (self.start + timedelta(days=day)).isoformat()


def generate(
    accounts: int = 3000, days: int = 270, seed: int = 1, start: date = START, integration: str = "active-days"
) -> Iterator[dict]:
    """CONTRACT section 3 events of a synthetic history, in occurred_at order, streamed."""
    return History(accounts, days, seed, start, integration).events()


def labels(accounts: int = 3000, days: int = 270, seed: int = 1, start: date = START) -> dict[str, date]:
    """The churn dates generate() with the same arguments lives by (any integration mode), without events."""
    history = History(accounts, days, seed, start)
    history.run_latent()
    return history.churn_dates()


def write(history: History, out: Path, fmt: str = "jsonl") -> Counter:
    """Write events, labels and accounts into out; return the events by type."""
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter = Counter()
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    with open(out / f"events.{fmt}", "w", encoding="utf-8", newline="") as handle:
        if fmt == "jsonl":
            for event in history.events():
                counts[event["type"]] += 1
                handle.write(encode(event) + "\n")
        else:
            rows = csv.writer(handle)
            rows.writerow(("id", "account_id", "type", "occurred_at", "properties"))
            for event in history.events():
                counts[event["type"]] += 1
                rows.writerow(
                    (event["id"], event["account_id"], event["type"], event["occurred_at"], encode(event["properties"]))
                )
    with open(out / "labels.csv", "w", encoding="utf-8", newline="") as handle:
        rows = csv.writer(handle)
        rows.writerow(("account_id", "churn_date"))
        for account_id, churn_date in sorted(history.churn_dates().items()):
            rows.writerow((account_id, churn_date.isoformat()))
    with open(out / "accounts.jsonl", "w", encoding="utf-8") as handle:
        for record in history.account_records():
            handle.write(encode(record) + "\n")
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--days", type=int, default=270)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--integration", choices=INTEGRATIONS, default="active-days")
    parser.add_argument("--start", type=date.fromisoformat, default=START)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    history = History(args.accounts, args.days, args.seed, args.start, args.integration)
    counts = write(history, args.out, args.format)
    seconds = time.perf_counter() - began
    churners = len(history.churn_dates())
    total = sum(counts.values())
    print(
        f"accounts {args.accounts}, churners {churners} ({churners / max(1, args.accounts):.1%}), "
        f"account-days {history.account_days:,}, events {total:,} in {seconds:.1f} s "
        f"({total / seconds:,.0f}/s) -> {args.out}"
    )
    for kind, count in sorted(counts.items(), key=lambda item: -item[1]):
        print(f"  {kind:22} {count:>10,}")


if __name__ == "__main__":
    sys.exit(main())
