"""The rule stage against the bare durable-rules engine, same run (issue 3, "Speed").

    .venv/bin/python bench/rules_engine.py [--events 100000] [--match-events 50000] [--rounds 3]
                                           [--memory-events 200000] [--reloads 1000]

Generates 100 rules (a mix of the condition language: comparisons on metrics, `in` / `not in`
lists, `between`, `exists`, `any` / `not`, and `matches` / `contains` on a few) into a
throwaway rules folder, loads them with the production loader, and measures:

1. Events per second through `app.matching.matcher.Matcher.match` (flatten, engine, the
   Python checks, priority sort), fed with facts built by `app.matching.facts.event_facts`
   (event, account and all metrics), against the bare engine: the same rules as the
   compiler's JSON registered on a durable-rules Host, one fixed sid, each pre-flattened
   fact asserted and retracted, nothing of Triage around it. Rounds alternate; medians.
   Goal: Triage at least half the bare rate.
2. A backtest (`app.matching.backtest.replay`, what `flask rules backtest` runs) of --events
   stored events in a throwaway SQLite database (accounts, events, health changes and daily
   usage rollups, bulk inserted), against the bare engine time for the same number of
   events. Candidate and live are the same 100 rules here, so the replay matches each event
   once (it matches twice when they differ), as the command does. Timed without metrics (`--no-metrics`; the bare engine
   computes none either) on every event, and with metrics (one rollup query per event) on a
   window of --metrics-events. Goal: within 3 times the bare engine time.
3. Memory (VmRSS from /proc/self/status): before and after --memory-events matches, and
   across --reloads catalog reloads (`app.catalog.refresh`, the production reload path, a
   new Matcher each time). Goal: flat.

Bounded: fixed counts, no network but loopback-free (no server at all); the database is a
temp file removed at the end. Results are appended to bench/RESULTS.md with the machine.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent.parent))
import argparse
import gc
import json
import os
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.common import append_results, machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RULES = 100
ACCOUNTS = 500
SEGMENTS = ("enterprise", "mid-market", "smb")
STAGES = ("trial", "onboarding", "adoption", "expansion", "renewal")
PLANS = ("starter", "professional", "premier", "enterprise")
STATUSES = ("green", "yellow", "red", "black")
CSMS = tuple(f"{name}@vendor.example" for name in ("ana", "ben", "chloe", "dev", "eli"))
NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka", "Tyrell")
FEATURES = ("reporting", "export", "api", "sso", "dashboards", "alerts")
SUBJECTS = (
    "Export fails for large files",
    "Login slow",
    "Reporting totals wrong",
    "SSO setup question",
    "Invoice copy",
    "API rate limit",
)
# (event type, weight): mostly daily usage, as in production.
EVENT_TYPES = (
    ("usage.daily", 60),
    ("account.health_changed", 12),
    ("support.ticket", 10),
    ("feedback.nps", 6),
    ("users.added", 6),
    ("usage.feature_first_used", 6),
)
PERIOD_DAYS = 180
START = datetime(2026, 3, 1, tzinfo=UTC)


# --- machine ---------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the 100 rules ---------------------------------------------------------------------------


def _q(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def generate_rules(count: int, playbooks: list[str], rng: random.Random) -> list[dict]:
    """Rule dicts as CS ops would write them in rules/*.yml (the loader checks them)."""
    # Thresholds point at the unhealthy tail, as real rules do: most events match no rule.
    usage = [
        lambda: f"metrics.active_users_change_pct_30d <= {rng.choice([-20, -25, -30, -40])}",
        lambda: f"metrics.logins_7d < {rng.randint(1, 4)}",
        lambda: f"metrics.logins_30d >= {rng.randint(1500, 2000)}",
        lambda: f"metrics.features_used_30d < 1 and account.days_as_customer > {rng.randint(30, 200)}",
        lambda: f"metrics.active_users_avg_30d between 0 and {rng.randint(1, 3)}",
        lambda: f"metrics.seats > {rng.randint(100, 150)} and metrics.active_users_avg_30d < {rng.randint(10, 20)}",
        lambda: f"metrics.tickets_high_30d >= {rng.randint(3, 4)} and account.arr >= {rng.randint(10, 200) * 1000}",
        lambda: f"account.plan in {_q(rng.sample(PLANS, 2))} and metrics.logins_7d < {rng.randint(2, 10)}",
        lambda: (
            f"account.segment not in {_q(rng.sample(SEGMENTS, 1))} and metrics.new_users_30d >= {rng.randint(12, 20)}"
        ),
        lambda: (
            f"account.days_to_renewal between 0 and {rng.choice([30, 60, 90])} and "
            f"metrics.active_users_change_pct_30d < {rng.choice([-10, -15])}"
        ),
        lambda: (
            f"any(metrics.nps_last <= {rng.randint(2, 4)}, metrics.happiness_last <= 1) and "
            f"account.lifecycle_stage in {_q(rng.sample(STAGES, 3))}"
        ),
        lambda: f"metrics.days_since_nps exists and metrics.days_since_nps > {rng.randint(365, 400)}",
        lambda: f'not (account.segment == "smb") and metrics.ticket_sentiment_30d < {rng.choice([-0.7, -0.8])}',
    ]
    text = [  # evaluated in Python after the engine (matches / contains)
        lambda: (
            f'account.name matches "^({"|".join(rng.sample(NAMES, 3))})" and metrics.logins_7d < {rng.randint(5, 20)}'
        ),
        lambda: f'account.csm matches "^(ana|ben)@vendor[.]example$" and account.arr > {rng.randint(300, 390) * 1000}',
        lambda: f'event.properties.features contains "{rng.choice(FEATURES)}" and metrics.features_used_30d <= 1',
    ]
    rules = []
    for number in range(count):
        rule = {
            "name": f"bench-{number:03d}",
            "playbook": playbooks[number % len(playbooks)],
            "owner": "bench@vendor.example",
            "priority": rng.randint(0, 5),
            "description": "generated by bench/rules_engine.py",
        }
        kind = number % 10
        if kind in (0, 1, 2, 3, 4):  # 50: usage.daily with metric conditions, some with a scope
            rule["on"] = "usage.daily"
            rule["if"] = rng.choice(usage)()
            if number % 3 == 0:
                rule["scope"] = {"lifecycle_stages": rng.sample(STAGES, 3)}
            if number % 4 == 0:
                rule["throttle"] = {"once_within": "30 days", "group_by": ["account.id"]}
        elif kind == 5:  # 10: health changes, narrowed by to / from / account
            rule["on"] = "health_changed"
            rule["to"] = rng.sample(STATUSES, rng.randint(1, 2))
            if number % 20 == 5:
                rule["from"] = rng.sample(STATUSES, 2)
            rule["account"] = {"segment": rng.sample(SEGMENTS, 2)}
            if number % 30 == 5:
                rule["if"] = f"account.arr >= {rng.randint(10, 100) * 1000}"
        elif kind == 6:  # 10: support tickets: severity lists, a subject regex on some
            rule["on"] = "support.ticket"
            severities = _q(rng.sample(["high", "urgent"], rng.randint(1, 2)))
            rule["if"] = (
                (
                    f"event.properties.severity in {severities} and event.properties.subject matches "
                    f'"(?i)({rng.choice(["export", "report", "login", "sso"])})"'
                )
                if number % 20 == 6
                else f"event.properties.severity in {severities} and account.segment in {_q(rng.sample(SEGMENTS, 2))}"
            )
        elif kind == 7:  # 10: NPS answers and users added
            if number % 20 == 7:
                rule["on"] = "feedback.nps"
                rule["if"] = (
                    f"event.properties.score <= {rng.randint(4, 7)} and account.plan in {_q(rng.sample(PLANS, 3))}"
                )
            else:
                rule["on"] = "users.added"
                rule["if"] = f"metrics.new_users_30d >= {rng.randint(5, 15)}"
        elif kind == 8:  # 10: first use of a feature
            rule["on"] = "usage.feature_first_used"
            rule["if"] = f"event.properties.feature in {_q(rng.sample(FEATURES, 1))}"
            rule["throttle"] = {"once_within": "365 days", "group_by": ["account.id", "event.properties.feature"]}
        else:  # 10: text conditions on usage.daily (regex / contains, checked in Python)
            rule["on"] = "usage.daily"
            rule["if"] = rng.choice(text)()
        rules.append(rule)
    return rules


def write_rules(folder: Path, rules: list[dict]) -> None:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.yml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False, width=200))


# --- accounts, events, facts -----------------------------------------------------------------


def make_accounts(rng: random.Random) -> list[dict]:
    accounts = []
    for number in range(ACCOUNTS):
        segment = SEGMENTS[number % 3]
        accounts.append(
            {
                "id": f"acct-{number:04d}",
                "name": f"{NAMES[number % len(NAMES)]} {number}",
                "segment": segment,
                "lifecycle_stage": rng.choice(STAGES),
                "plan": rng.choice(PLANS),
                "arr": rng.randint(2, 400) * 1000,
                "renewal_date": date(2026, 6, 1) + timedelta(days=rng.randint(0, 365)),
                "customer_since": date(2024, 1, 1) + timedelta(days=rng.randint(0, 700)),
                "csm": CSMS[number % len(CSMS)],
                "manager": "mo@vendor.example",
                "health_status": rng.choice(STATUSES[:3]),
                "score": rng.randint(20, 95),
            }
        )
    return accounts


def event_properties(kind: str, rng: random.Random) -> dict:
    if kind == "usage.daily":
        return {
            "active_users": rng.randint(0, 80),
            "logins": rng.randint(0, 200),
            "features": {name: rng.randint(0, 9) for name in rng.sample(FEATURES, rng.randint(0, 4))},
        }
    if kind == "support.ticket":
        return {
            "severity": rng.choices(["low", "normal", "high", "urgent"], weights=(40, 40, 15, 5))[0],
            "subject": rng.choice(SUBJECTS),
            "sentiment": round(rng.uniform(-1, 1), 2),
        }
    if kind == "feedback.nps":
        return {"score": rng.randint(0, 10), "comment": "ok"}
    if kind == "users.added":
        return {"count": rng.randint(1, 6)}
    if kind == "usage.feature_first_used":
        return {"feature": rng.choice(FEATURES)}
    return {}


def random_metrics(rng: random.Random) -> dict:
    """Mostly healthy accounts, a tail of unhealthy ones (what the rules look for)."""
    avg = round(rng.uniform(0.5, 80), 2)
    prev = round(avg * (1 + rng.gauss(0, 0.08)), 2) if rng.random() < 0.85 else None
    nps = rng.choices(range(11), weights=(1, 1, 1, 2, 2, 3, 5, 10, 15, 15, 10))[0] if rng.random() < 0.5 else None
    logins_7d = int(avg * rng.uniform(2, 6))
    return {
        "active_users_avg_30d": avg,
        "active_users_avg_prev_30d": prev,
        "active_users_change_pct_30d": round((avg - prev) / prev * 100, 1) if prev else None,
        "logins_7d": logins_7d,
        "logins_30d": logins_7d * 4 + rng.randint(0, 50),
        "new_users_30d": rng.choices(range(16), weights=(40, 20, 12, 8, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1))[0],
        "seats": int(avg * rng.uniform(1.1, 2)) + 1,
        "nps_last": nps,
        "days_since_nps": rng.randint(0, 400) if nps is not None else None,
        "happiness_last": rng.choices((1, 2, 3, 4), weights=(1, 4, 10, 10))[0] if rng.random() < 0.4 else None,
        "tickets_30d": rng.randint(0, 12),
        "tickets_high_30d": rng.choices(range(5), weights=(70, 15, 8, 5, 2))[0],
        "ticket_sentiment_30d": round(rng.uniform(-1, 1), 3) if rng.random() < 0.6 else None,
        "features_used_30d": rng.choices(range(7), weights=(3, 10, 20, 20, 20, 15, 12))[0],
    }


def make_events(count: int, rng: random.Random) -> list[dict]:
    """Event rows (dicts), in occurred_at order, spread over PERIOD_DAYS."""
    kinds = [kind for kind, weight in EVENT_TYPES for _ in range(weight)]
    step = PERIOD_DAYS * 86400 / count
    events = []
    for number in range(count):
        kind = rng.choice(kinds)
        properties = event_properties(kind, rng)
        account = f"acct-{rng.randrange(ACCOUNTS):04d}"
        payload = {"id": f"bench-{number}", "account_id": account, "type": kind, "properties": properties}
        if kind == "account.health_changed":
            payload = {
                "type": kind,
                "account": {"id": account},
                "health": {"to": rng.choice(STATUSES), "from": rng.choice(STATUSES)},
            }
        events.append(
            {
                "source": "crm" if kind == "account.health_changed" else "api",
                "external_id": f"bench-{number}",
                "type": kind,
                "account_id": account,
                "occurred_at": START + timedelta(seconds=number * step),
                "payload": payload,
            }
        )
    return events


def build_facts(events: list[dict], accounts: list[dict], rng: random.Random) -> list[dict]:
    """Facts exactly as the pipeline builds them (`event_facts`), with random metrics."""
    from app.matching.facts import event_facts
    from app.models import Account, Event

    by_id = {row["id"]: Account(**row) for row in accounts}
    facts = []
    for row in events:
        event = Event(**row)
        health = None
        if row["type"] == "account.health_changed":
            health = {"to": row["payload"]["health"]["to"], "from": rng.choice(STATUSES), "crm_from": None}
        facts.append(
            event_facts(event=event, account=by_id[row["account_id"]], metrics=random_metrics(rng), health=health)
        )
    return facts


# --- the two contenders ----------------------------------------------------------------------


class BareEngine:
    """durable-rules as it comes: the compiler's JSON, one sid, assert + retract per fact."""

    def __init__(self, definition: dict):
        from durable.engine import Host

        class QuietHost(Host):  # the default Host's two timer threads are idle noise here
            def _run(self) -> None:
                pass

        self.fired = 0
        rules = json.loads(json.dumps(definition))  # plain, fresh dicts: the engine mutates them
        for rule in rules.values():
            rule["run"] = self._count
        self.host = QuietHost()
        self.host.register_rulesets({"bare": rules})

    def _count(self, c) -> None:
        self.fired += 1

    def run(self, flat_facts: list[dict], count: int) -> float:
        from durable.engine import MessageNotHandledException

        assert_fact, retract_fact = self.host.assert_fact, self.host.retract_fact
        size = len(flat_facts)
        started = time.perf_counter()
        for number in range(count):
            fact = flat_facts[number % size]
            fact["id"] = number
            try:
                assert_fact("bare", fact)
            except MessageNotHandledException:
                pass
            try:
                retract_fact("bare", fact)
            except MessageNotHandledException:
                pass
        return time.perf_counter() - started


def run_matcher(matcher, facts: list[dict], count: int) -> tuple[float, int]:
    size, matched = len(facts), 0
    match = matcher.match
    started = time.perf_counter()
    for number in range(count):
        matched += len(match(facts[number % size]))
    return time.perf_counter() - started, matched


# --- the throwaway database for the backtest -------------------------------------------------


def make_app(folder: Path, rules_dir: Path):
    os.environ.update(
        {
            "TRIAGE_INSTANCE": str(folder / "instance"),
            "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
            "RULES_DIR": str(rules_dir),
            "RULES_RELOAD_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            # never the embedded Redis: nothing here enqueues
            "REDIS_URL": os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14"),
        }
    )
    from app import create_app

    return create_app()


def fill_database(app, accounts: list[dict], events: list[dict], rng: random.Random) -> float:
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from app.extensions import db
    from app.models import Account, Event, HealthChange
    from app.models.usage import DailyUsage

    started = time.perf_counter()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"), revision="heads")
        db.session.execute(insert(Account), accounts)
        usage = []
        for account in accounts:  # 60 days before the period and the period: metrics have data
            for day in range(-60, PERIOD_DAYS + 1, 2):
                usage.append(
                    {
                        "account_id": account["id"],
                        "day": (START + timedelta(days=day)).date(),
                        "active_users": rng.randint(0, 80),
                        "logins": rng.randint(0, 200),
                        "features": dict.fromkeys(rng.sample(FEATURES, 2), 1),
                        "seats": 100,
                        "new_users": rng.randint(0, 2),
                        "nps_score": rng.randint(0, 10) if day % 30 == 0 else None,
                        "tickets": rng.randint(0, 1),
                        "tickets_high": 0,
                        "sentiment_sum": 0.0,
                        "sentiment_count": 0,
                    }
                )
        db.session.execute(insert(DailyUsage), usage)
        for chunk in range(0, len(events), 20000):
            db.session.execute(insert(Event), events[chunk : chunk + 20000])
        health = [
            (event_id, account_id, payload, at)
            for event_id, account_id, payload, at in db.session.execute(
                select(Event.id, Event.account_id, Event.payload, Event.occurred_at).where(
                    Event.type == "account.health_changed"
                )
            )
        ]
        if health:
            db.session.execute(
                insert(HealthChange),
                [
                    {
                        "account_id": account_id,
                        "status": payload["health"]["to"],
                        "previous": payload["health"]["from"],
                        "crm_from": payload["health"]["from"],
                        "at": at,
                        "source": "crm",
                        "event_id": event_id,
                    }
                    for event_id, account_id, payload, at in health
                ],
            )
        db.session.commit()
    return time.perf_counter() - started


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="stored events the backtest replays")
    parser.add_argument(
        "--metrics-events",
        type=int,
        default=10_000,
        help="events of the backtest run with metrics (one rollup query each)",
    )
    parser.add_argument("--match-events", type=int, default=50_000, help="events per round of the rate comparison")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distinct-facts", type=int, default=5_000, help="distinct fact sets, cycled")
    parser.add_argument("--memory-events", type=int, default=200_000)
    parser.add_argument("--reloads", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to bench/RESULTS.md")
    args = parser.parse_args()
    command = " ".join(["python bench/rules_engine.py", *(shlex.quote(arg) for arg in sys.argv[1:])])
    about = machine("durable_rules", "SQLAlchemy")
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="triage-bench-rules-") as tmp:
        folder = Path(tmp)
        rules_dir = folder / "rules"
        from app.playbooks.loader import load_playbooks

        playbook_names = sorted(load_playbooks(str(ROOT / "playbooks")))
        rule_dicts = generate_rules(RULES, playbook_names, rng)
        write_rules(rules_dir, rule_dicts)
        app = make_app(folder, rules_dir)

        from app import catalog
        from app.matching import compiler
        from app.matching.backtest import replay
        from app.matching.matcher import Matcher

        with app.app_context():
            live = catalog.current()
        ruleset = live.ruleset
        assert len(ruleset.rules) == RULES, len(ruleset.rules)
        python_rules = sum(1 for rule in ruleset.rules if compiler.python_checks(rule))

        # 1. rate: Matcher.match against the bare engine, alternating rounds
        accounts = make_accounts(rng)
        sample_events = make_events(args.distinct_facts, rng)
        facts = build_facts(sample_events, accounts, rng)
        flat = [compiler.flatten(f) for f in facts]
        for fact in flat:
            fact["sid"] = "bare"
        matcher = Matcher(ruleset)
        bare = BareEngine(compiler.definition(ruleset, include_disabled=True))
        bare.run(flat, 2000)
        run_matcher(matcher, facts, 2000)  # warm both
        bare_rates, triage_rates = [], []
        for round_number in range(args.rounds):
            bare.fired = 0
            bare_rates.append(args.match_events / bare.run(flat, args.match_events))
            elapsed, matched = run_matcher(matcher, facts, args.match_events)
            triage_rates.append(args.match_events / elapsed)
            print(
                f"round {round_number + 1}: bare {bare_rates[-1]:,.0f} events/s ({bare.fired} engine firings), "
                f"Triage Matcher {triage_rates[-1]:,.0f} events/s ({matched} rules matched)",
                flush=True,
            )
        bare_rate, triage_rate = statistics.median(bare_rates), statistics.median(triage_rates)
        # What the pipeline does per event on top: event_facts (no metrics query) then match.
        from app.matching.facts import event_facts
        from app.models import Account, Event

        rows = [
            (Event(**row), Account(**accounts[int(row["account_id"][5:])]), random_metrics(rng))
            for row in sample_events[:2000]
        ]
        started = time.perf_counter()
        for event, account, metrics in rows:
            matcher.match(event_facts(event=event, account=account, metrics=metrics))
        with_facts_rate = len(rows) / (time.perf_counter() - started)

        # 2. backtest over stored events against the bare engine for the same N
        events = make_events(args.events, rng)
        fill_seconds = fill_database(app, accounts, events, rng)
        print(f"database: {args.events:,} events, {ACCOUNTS} accounts stored in {fill_seconds:.0f} s", flush=True)
        since, until = START - timedelta(days=1), START + timedelta(days=PERIOD_DAYS + 1)
        candidate = Matcher(ruleset)
        with app.app_context():
            started = time.perf_counter()
            report = replay(candidate, live.matcher, since, until, with_metrics=False)
            backtest_seconds = time.perf_counter() - started
            assert report.events == args.events, report.events
            fires = sum(report.candidate.fires.values())
            metrics_events = min(args.metrics_events, args.events)
            metrics_until = events[metrics_events - 1]["occurred_at"] + timedelta(microseconds=1)
            started = time.perf_counter()
            metrics_report = replay(candidate, live.matcher, since, metrics_until, with_metrics=True)
            metrics_seconds = time.perf_counter() - started
        bare_seconds = bare.run(flat, args.events)
        print(
            f"backtest {args.events:,} events: {backtest_seconds:.1f} s ({fires:,} launches); bare engine "
            f"{bare_seconds:.1f} s; with metrics {metrics_report.events:,} events in {metrics_seconds:.1f} s",
            flush=True,
        )

        # 3. memory: a long matching loop, then reloads
        gc.collect()
        run_matcher(matcher, facts, 20_000)
        loop_before = rss_mb()
        loop_seconds, _ = run_matcher(matcher, facts, args.memory_events)
        gc.collect()
        loop_after = rss_mb()
        del matcher, candidate, bare
        gc.collect()
        before_reloads = rss_mb()
        reload_rss, threads = [], []
        started = time.perf_counter()
        with app.app_context():
            for number in range(args.reloads):
                catalog.request_reload(app)
                assert catalog.refresh(app, force=True), f"reload {number} did not go live"
                catalog.current().matcher.match(facts[number % len(facts)])
                if number in (min(99, args.reloads - 1), args.reloads - 1):
                    gc.collect()
                    reload_rss.append(rss_mb())
                    threads.append(threading.active_count())
        reload_seconds = time.perf_counter() - started
        print(
            f"memory: {loop_before:.0f} -> {loop_after:.0f} MB over {args.memory_events:,} matches; "
            f"{reload_rss[0]:.0f} -> {reload_rss[-1]:.0f} MB from reload 100 to {args.reloads} "
            f"({reload_seconds:.0f} s)",
            flush=True,
        )
        with app.app_context():
            from app.extensions import db

            db.session.remove()
            db.engine.dispose()

    ratio = triage_rate / bare_rate
    backtest_ratio = backtest_seconds / bare_seconds
    metrics_ratio = (
        (metrics_seconds / metrics_report.events) / (bare_seconds / args.events)
        if metrics_report.events
        else float("nan")
    )
    lines = [
        f"## rules engine: rule stage and backtest against bare durable-rules, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine: {about}",
        f"command: `{command}`",
        f"{RULES} generated rules ({python_rules} with a `matches`/`contains` check done in Python); facts from "
        f"`event_facts` with every metric and account fact, {args.distinct_facts:,} distinct, cycled; "
        f"{args.rounds} alternating rounds of {args.match_events:,} events, medians",
        "",
        "| measure | Triage | bare durable-rules | ratio | goal |",
        "| --- | --- | --- | --- | --- |",
        f"| events/s, `Matcher.match` vs assert+retract on one sid | {triage_rate:,.0f} | {bare_rate:,.0f} | "
        f"{ratio:.2f} | >= 0.5: {'met' if ratio >= 0.5 else 'NOT met'} |",
        f"| events/s, `event_facts` + `Matcher.match` (no metrics query) | {with_facts_rate:,.0f} | {bare_rate:,.0f} | "
        f"{with_facts_rate / bare_rate:.2f} | |",
        f"| backtest of {args.events:,} stored events, `--no-metrics` (SQLite, candidate = live rules) | "
        f"{backtest_seconds:.1f} s | "
        f"{bare_seconds:.1f} s | {backtest_ratio:.1f}x | <= 3x: {'met' if backtest_ratio <= 3 else 'NOT met'} |",
        f"| backtest with metrics, first {metrics_report.events:,} events (per event) | "
        f"{metrics_seconds / max(metrics_report.events, 1) * 1e6:.0f} us | {bare_seconds / args.events * 1e6:.0f} us | "
        f"{metrics_ratio:.1f}x | |",
        f"| RSS over {args.memory_events:,} matches | {loop_before:.0f} -> {loop_after:.0f} MB "
        f"({loop_after - loop_before:+.1f}) | | | flat: {'met' if loop_after - loop_before <= 10 else 'NOT met'} |",
        f"| RSS from reload 100 to {args.reloads} (`catalog.refresh`), threads | {reload_rss[0]:.0f} -> "
        f"{reload_rss[-1]:.0f} MB ({reload_rss[-1] - reload_rss[0]:+.1f}), threads {threads[0]} -> {threads[-1]} | | | "
        f"flat: {'met' if reload_rss[-1] - reload_rss[0] <= 50 and threads[-1] <= threads[0] else 'NOT met'} |",
        f"| RSS before the first reload | {before_reloads:.0f} MB | | | |",
        "",
        f"backtest database filled in {fill_seconds:.0f} s; {fires:,} candidate launches; "
        f"{args.reloads} reloads in {reload_seconds:.0f} s",
        "",
    ]
    print("\n".join(lines))
    if not args.no_append:
        append_results(["", *lines])


if __name__ == "__main__":
    main()
