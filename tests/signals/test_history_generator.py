"""bench/history_generator.py: the synthetic history is valid intake, streamed in order, reproducible,
and has the statistical shape it claims (churners fade on average, but not all of them, and not only them)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import date, timedelta
from statistics import mean, median

import pytest

from app.intake.event_validation import validate_event
from bench.history_generator import START, TRICKLE_DAYS, History, generate, labels, main

ACCOUNTS, DAYS, SEED = 200, 120, 7
TYPES = {
    "usage.daily",
    "usage.feature_used",
    "users.added",
    "seats.changed",
    "feedback.nps",
    "feedback.happiness",
    "support.ticket",
    "billing.payment_failed",
}


def day_of(event: dict) -> int:
    return (date.fromisoformat(event["occurred_at"][:10]) - START).days


@pytest.fixture(scope="module")
def active_days():
    history = History(ACCOUNTS, DAYS, SEED, integration="active-days")
    return list(history.events()), history


@pytest.fixture(scope="module")
def every_day():
    history = History(ACCOUNTS, DAYS, SEED, integration="every-day")
    return list(history.events()), history


def test_events_come_in_time_order_with_unique_ids(active_days):
    events, _ = active_days
    stamps = [event["occurred_at"] for event in events]
    assert stamps == sorted(stamps)
    assert len({event["id"] for event in events}) == len(events) > 10_000
    assert {event["type"] for event in events} == TYPES


def test_every_event_passes_the_intake_validation(active_days, every_day):
    for events in (active_days[0], every_day[0]):
        problems = [(event["id"], errors) for event in events for _, errors in [validate_event(event)] if errors]
        assert problems == []
        assert all(event["occurred_at"].endswith("Z") for event in events)


def test_same_seed_same_history_other_seed_other_population(active_days):
    events, history = active_days
    again = list(generate(ACCOUNTS, DAYS, SEED))
    assert again == events
    other = list(generate(ACCOUNTS, DAYS, SEED + 1))
    assert {e["id"].split("-", 1)[1] for e in other[:500]} != {e["id"].split("-", 1)[1] for e in events[:500]}
    assert labels(ACCOUNTS, DAYS, SEED + 1) != history.churn_dates()
    assert [a.segment.name for a in History(ACCOUNTS, DAYS, SEED + 1).accounts] != [
        a.segment.name for a in history.accounts
    ]


def test_labels_do_not_depend_on_the_integration_mode_or_on_generating_events(active_days, every_day):
    truth = labels(ACCOUNTS, DAYS, SEED)
    assert truth == active_days[1].churn_dates() == every_day[1].churn_dates()
    assert 0 < len(truth) < ACCOUNTS / 3
    assert all(0 <= (churn_date - START).days < DAYS for churn_date in truth.values())


def test_active_days_mode_sends_no_zero_rows(active_days):
    rows = [e for e in active_days[0] if e["type"] == "usage.daily"]
    assert rows and all(row["properties"]["active_users"] > 0 for row in rows)


def test_every_day_mode_sends_one_row_per_account_per_live_day(every_day):
    events, history = every_day
    days_of = defaultdict(list)
    for event in events:
        if event["type"] == "usage.daily":
            days_of[event["account_id"]].append(day_of(event))
    zero_rows = sum(1 for e in events if e["type"] == "usage.daily" and e["properties"]["active_users"] == 0)
    assert zero_rows > 1000  # weekends, vacations, outages, single users' days off
    churned = history.churn_dates()
    for account in history.accounts:
        first = max(0, (account.since - START).days)
        seen = days_of[account.id]
        assert seen == list(range(first, first + len(seen)))  # one a day, no gap, from customer_since
        last = seen[-1] if seen else first - 1
        if account.id in churned:
            churn_day = (churned[account.id] - START).days
            assert churn_day - 1 <= last < churn_day + TRICKLE_DAYS
        else:
            assert last == DAYS - 1


def test_nothing_after_churn_date_and_trickle_nothing_before_customer_since(active_days, every_day):
    for events, history in (active_days, every_day):
        churned = history.churn_dates()
        since = {a.id: a.since for a in history.accounts}
        trickle = timedelta(days=TRICKLE_DAYS)
        late = [
            e
            for e in events
            if e["account_id"] in churned
            and date.fromisoformat(e["occurred_at"][:10]) >= churned[e["account_id"]] + trickle
        ]
        early = [e for e in events if date.fromisoformat(e["occurred_at"][:10]) < since[e["account_id"]]]
        assert late == [] and early == []
        trickled = [
            e
            for e in events
            if e["account_id"] in churned and date.fromisoformat(e["occurred_at"][:10]) >= churned[e["account_id"]]
        ]
        assert all(e["type"] in ("usage.daily", "usage.feature_used") for e in trickled)


def last_30_days_activity(events, history, days):
    """Per account: (mean active users in its last 30 live days, the same relative to its earlier days)."""
    daily = defaultdict(dict)
    for event in events:
        if event["type"] == "usage.daily":
            daily[event["account_id"]][day_of(event)] = event["properties"]["active_users"]
    churned = history.churn_dates()
    out = {}
    for account in history.accounts:
        first = max(0, (account.since - START).days)
        end = (churned[account.id] - START).days if account.id in churned else days
        if end - first < 60:  # too short a life for a before and after
            continue
        activity = daily[account.id]
        recent = mean(activity.get(d, 0) for d in range(end - 30, end))
        before = mean(activity.get(d, 0) for d in range(first, end - 30))
        out[account.id] = (recent, (recent + 0.1) / (before + 0.1))
    return out, churned


def test_churners_are_less_active_in_their_last_30_days_but_not_all_of_them():
    """A population property, so on a population large enough for it (about 60 churners with a
    before and after; 200 accounts over 120 days have about 10)."""
    history = History(800, 150, SEED)
    daily = [event for event in history.events() if event["type"] == "usage.daily"]
    activity, churned = last_30_days_activity(daily, history, 150)
    churners = [value for account_id, value in activity.items() if account_id in churned]
    retained = [value for account_id, value in activity.items() if account_id not in churned]
    assert len(churners) >= 40 and len(retained) >= 400
    assert mean(recent for recent, _ in churners) < mean(recent for recent, _ in retained)
    assert mean(change for _, change in churners) < 0.9 * mean(change for _, change in retained)
    # realistic, not separable by construction: some churners keep their level to the end
    # (they leave abruptly), and some retained accounts had a bad last month
    assert sum(change >= median(c for _, c in retained) for _, change in churners) >= 4
    assert sum(change < 0.7 for _, change in retained) >= 40


def test_churn_rate_over_270_days_is_between_15_and_30_percent():
    for seed in (1, 2):
        share = len(labels(1000, 270, seed)) / 1000
        assert 0.15 <= share <= 0.30, share


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_files_written_as_described(tmp_path, fmt, capsys):
    main(
        [
            "--accounts",
            "60",
            "--days",
            "90",
            "--seed",
            "3",
            "--out",
            str(tmp_path),
            "--format",
            fmt,
            "--integration",
            "mixed",
        ]
    )
    expected = list(generate(60, 90, 3, START, "mixed"))
    if fmt == "jsonl":
        lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line) for line in lines] == expected
    else:
        with open(tmp_path / "events.csv", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["id", "account_id", "type", "occurred_at", "properties"]
            rows = [dict(row, properties=json.loads(row["properties"])) for row in reader]
        assert rows == expected
    with open(tmp_path / "labels.csv", encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["account_id", "churn_date"]
        written = {account_id: date.fromisoformat(churn_date) for account_id, churn_date in reader}
    assert written == labels(60, 90, 3)
    accounts = [json.loads(line) for line in (tmp_path / "accounts.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [a["id"] for a in accounts] == [f"hist-{n:05d}" for n in range(1, 61)]
    for account in accounts:
        assert {
            "id",
            "name",
            "segment",
            "plan",
            "arr",
            "customer_since",
            "renewal_date",
            "contacts",
            "contact_changes",
        } <= set(account)
        assert account["arr"] > 0 and date.fromisoformat(account["renewal_date"]) > date.fromisoformat(
            account["customer_since"]
        )
        roles = {contact["role"] for contact in account["contacts"]}
        assert "decision_maker" in roles and roles <= {"decision_maker", "champion", "user"}
        for change in account["contact_changes"]:
            assert change["role"] in ("decision_maker", "champion") and date.fromisoformat(change["date"])
    assert {a["segment"] for a in accounts} == {"consumer", "small_team", "team"}
    summary = capsys.readouterr().out
    assert "churners" in summary and "account-days" in summary and "usage.daily" in summary


def test_decision_makers_are_replaced_and_recorded():
    history = History(400, 270, 5)
    history.run_latent()
    changes = [
        change for account in history.accounts for change in account.changes if change["role"] == "decision_maker"
    ]
    assert len(changes) >= 10
    records = {record["id"]: record for record in history.account_records()}
    some = next(a for a in history.accounts if any(c["role"] == "decision_maker" for c in a.changes))
    change = next(c for c in records[some.id]["contact_changes"] if c["role"] == "decision_maker")
    contacts = {contact["id"]: contact for contact in records[some.id]["contacts"]}
    assert contacts[change["to"]]["role"] == "decision_maker" and contacts[change["to"]]["since"] == change["date"]
