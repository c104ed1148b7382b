"""Issue 7: 10,000 mixed deliveries (CRM status changes and usage events, 5% duplicates, 5%
invalid) through the real intake and real RQ workers (SimpleWorker, burst, after every ~1,000
deliveries). The database must end with exactly the valid, distinct events and what they imply.

The stream (seeded): 160 accounts over 42 days; 1,000 webhooks (8% arrive days late, 20% repeat
the current status, 40 account updates) posted one by one; 8,000 usage events (a daily report
per account and day, users added, features, feedback, tickets, a custom type) in batches of
40-250. 500 duplicates: webhooks again at once or much later (some with other content), ids
twice in one batch, parts of batches sent again, single events inside later batches. 500
invalid: every signature, body and token fault of CONTRACT 4, some of them failed first attempts
of a delivery that succeeds later. Every answer is checked (status, accepted, duplicates).

The expectation is not read back from the server: `Model` derives it from the stream, the
contract (CONTRACT.md 2-4) and the rule and playbook files, which
`test_the_model_follows_the_rule_and_playbook_files` pins, so a changed file fails there with
a clear message instead of as a puzzling mismatch here. The stream stays under the rules' brakes
and away from rounding edges, so the model stays simple; it does not predict score bands (their
internal events are only checked to be processed).
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from sqlalchemy import select

from app.models import Account, Event, HealthChange, PlaybookRun, RuleFiring, Task
from app.models.usage import DailyUsage
from tests.helpers import ROOT, TEST_SECRET, TEST_TOKEN, signed_headers, unprocessed

SEED = 20261125
ACCOUNTS, DAYS = 160, 42
START = datetime(2026, 8, 1, tzinfo=UTC)
VALID_CRM, VALID_API, DUPLICATES, INVALID = 1_000, 8_000, 500, 500  # 10,000 deliveries
CHUNK = 1_000  # deliveries posted between worker runs: many duplicates arrive after their original was processed
STATUSES = ("green", "yellow", "red", "black")
SEGMENTS, STAGES = ("enterprise", "mid-market", "smb"), ("trial", "onboarding", "adoption", "expansion", "renewal")
FEATURES = ("reporting", "export", "api", "glossary", "workflows")
OTHER_SECRET = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"

# --- what the model assumes about rules/*.yml and playbooks/*.yml (pinned by the first test) ---
HEALTH_RULES = {
    "green": "green-advocate",
    "yellow": "yellow-find-out-why",
    "red": "red-action-plan",
    "black": "black-save-attempt",
}  # rule name == playbook name
CLOSES_ON = {
    "red-action-plan": {"green"},
    "green-advocate": {"red", "black"},
    "yellow-find-out-why": {"green"},
    "black-save-attempt": {"green", "yellow"},
    "usage-decline": {"black"},
}
DECLINE_STAGES = {"onboarding", "adoption", "expansion", "renewal"}
REPORTING_SEGMENTS, REPORTING_STAGES = {"enterprise", "mid-market"}, {"adoption", "expansion", "renewal"}
# rule: (playbook, throttle window in days, brake per hour); throttles group by account (and feature)
USAGE_RULES = {
    "usage-decline": ("usage-decline", 30, 50),
    "new-users-training": ("new-users-training", 30, 50),
    "low-reporting-use": ("executive-sponsor-review", 90, 50),
    "feature-adoption": ("feature-adoption", 365, 100),
}
CONCURRENT = {"feature-adoption"}
USAGE_TYPES = {
    "usage.daily",
    "usage.feature_used",
    "users.added",
    "seats.changed",
    "feedback.nps",
    "feedback.happiness",
    "support.ticket",
}  # CONTRACT 3: the defined types, which feed the rollups
MIN_BASELINE_DAYS = 7  # metrics/usage.yml: a change in active users needs 7 days of data before the window


def test_the_model_follows_the_rule_and_playbook_files():
    from app.signals.indicators import load_metrics

    server_baseline = load_metrics(str(ROOT / "metrics")).by_name["active_users_change_pct_30d"].min_days

    rules = {}
    for path in (ROOT / "rules").glob("*.yml"):
        for rule in yaml.safe_load(path.read_text())["rules"]:
            rules[rule["name"]] = {"on" if key is True else key: value for key, value in rule.items()}  # YAML 1.1: on
    playbooks = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "playbooks").glob("*.yml")}
    for status, name in HEALTH_RULES.items():
        assert (rules[name]["on"], rules[name]["to"], rules[name]["playbook"]) == ("health_changed", status, name)
        assert "if" not in rules[name] and "throttle" not in rules[name] and "brake" not in rules[name]
    assert {n for n, r in rules.items() if r["on"] == "health_changed"} == set(HEALTH_RULES.values())
    # Schedules only fire from the scheduler, which this test does not run.
    assert {n for n, r in rules.items() if r["on"] not in ("health_changed", "schedule")} == set(USAGE_RULES)
    for name, (playbook, days, brake) in USAGE_RULES.items():
        assert rules[name]["playbook"] == playbook and rules[name]["brake"] == {"max": brake, "per": "hour"}
        assert rules[name]["throttle"]["once_within"] == f"{days} days"
    assert rules["usage-decline"]["if"] == "metrics.active_users_change_pct_30d <= -20"
    assert set(rules["usage-decline"]["scope"]["lifecycle_stages"]) == DECLINE_STAGES
    assert rules["new-users-training"]["if"] == "metrics.new_users_30d >= 10"
    assert rules["feature-adoption"]["on"] == "usage.feature_first_used"
    assert rules["low-reporting-use"]["if"] == (
        "not event.properties.features.reporting > 0 and metrics.logins_30d >= 20 and account.days_as_customer >= 60"
    )
    scope = rules["low-reporting-use"]["scope"]
    assert (set(scope["segments"]), set(scope["lifecycle_stages"])) == (REPORTING_SEGMENTS, REPORTING_STAGES)
    assert {n: set(p["close_when"]["health"]) for n, p in playbooks.items() if "close_when" in p} == CLOSES_ON
    assert {n for n, p in playbooks.items() if p.get("concurrent")} == CONCURRENT
    assert server_baseline == MIN_BASELINE_DAYS


def test_an_id_repeated_in_a_batch_is_applied_at_its_first_place(client, db, run_jobs):
    """Found by the stream below: the events API must apply a batch in order of arrival, and a
    repeated id must not move its event to the place of the repetition."""

    def usage(key, day):
        return {
            "id": key,
            "account_id": "acme",
            "type": "users.added",
            "occurred_at": f"2026-08-{day:02d}T00:00:00Z",
            "properties": {"count": 1},
        }

    batch = [usage("first", 1), usage("second", 2), usage("first", 1)]
    response = client.post("/api/v1/events", json=batch, headers={"Authorization": f"Bearer {TEST_TOKEN}"})
    assert response.get_json() == {"accepted": 2, "duplicates": 1}
    run_jobs()
    applied = db.session.execute(select(Event.external_id).order_by(Event.processed_at)).scalars().all()
    assert applied == ["first", "second"]


# --- the stream -----------------------------------------------------------------------------


@dataclass
class Delivery:
    key: str  # webhook-id or event id: the idempotency key
    body: dict
    fault: str | None = None  # why this item is invalid


@dataclass
class Request:
    kind: str  # "crm" or "api"
    items: list[Delivery]
    slot: float  # position in the stream
    fault: str | None = None  # a fault of the whole request (token, content type, JSON)
    base: list[Delivery] = field(default_factory=list)  # the original items (empty for added requests)

    @property
    def invalid(self) -> bool:
        return self.fault is not None or any(item.fault for item in self.items)


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_profiles(rng):
    profiles = []
    for i in range(ACCOUNTS):
        facts = {
            "id": f"mix-{i:03d}",
            "name": f"Customer {i:03d}",
            "segment": rng.choice(SEGMENTS),
            "lifecycle_stage": rng.choice(STAGES),
            "plan": rng.choice(["standard", "premier"]),
            "csm": f"csm{i % 7}@vendor.example",
            "manager": f"manager{i % 3}@vendor.example",
            "contacts": [{"name": f"Contact {i}", "email": f"contact@customer{i}.example", "role": "user"}],
        }
        since = rng.choice([None, None, "2025-03-01", "2026-06-20"])  # the last one turns 60 days old mid-stream
        if since:
            facts["customer_since"] = since
        profiles.append(
            {
                "facts": facts,
                "declining": rng.random() < 0.12,
                "base": rng.randint(20, 150),
                "features": tuple(rng.sample(FEATURES, rng.randint(1, 3))) if rng.random() < 0.2 else (),
                "adds_users": rng.random() < 0.25,
            }
        )
    return profiles


def crm_events(rng, profiles):
    """(arrival, key, body): every account gets a status; 8% of the changes arrive days late."""
    counts = Counter(p["facts"]["id"] for p in profiles)
    updates = 40
    for _ in range(VALID_CRM - updates - len(profiles)):
        counts[rng.choice(profiles)["facts"]["id"]] += 1
    events = []
    for p in profiles:
        status = None
        for minute in sorted(rng.sample(range(DAYS * 1440), counts[p["facts"]["id"]])):
            repeat = status is not None and rng.random() < 0.2  # the same status again: a new reason only
            status = status if repeat else rng.choice([s for s in STATUSES if s != status])
            health = {
                "to": status.upper() if rng.random() < 0.1 else status,
                "reason": f"reason {minute}",
                "changed_by": p["facts"]["csm"],
            }
            if rng.random() < 0.3:
                health["from"] = rng.choice(STATUSES)  # what the CRM believed: recorded, not trusted
            body = {
                "type": "account.health_changed",
                "occurred_at": iso(START + timedelta(minutes=minute)),
                "account": p["facts"],
                "health": health,
            }
            late = rng.uniform(1, 8) if rng.random() < 0.08 else 0
            events.append((minute / 1440 + rng.uniform(0, 0.02) + late, f"msg_{rng.getrandbits(64):016x}", body))
    for _ in range(updates):
        p, minute = rng.choice(profiles), rng.randrange(DAYS * 1440)
        body = {"type": "account.updated", "occurred_at": iso(START + timedelta(minutes=minute)), "account": p["facts"]}
        events.append((minute / 1440 + rng.uniform(0, 0.02), f"msg_{rng.getrandbits(64):016x}", body))
    return [("crm",) + e for e in events]


OTHER_TYPES = {
    "users.added": 4,
    "usage.feature_used": 2,
    "feedback.nps": 2,
    "feedback.happiness": 2,
    "support.ticket": 2,
    "seats.changed": 1,
    "billing.invoice_overdue": 1,
}


def other_event(rng, profiles):
    """A usage event other than the daily report, for an account it fits."""
    kind = rng.choices(list(OTHER_TYPES), list(OTHER_TYPES.values()))[0]
    if kind == "users.added":
        p = rng.choice([p for p in profiles if p["adds_users"]])
        return p, kind, {"count": rng.randint(1, 6)}
    if kind == "usage.feature_used":
        p = rng.choice([p for p in profiles if p["features"]])
        return p, kind, {"feature": rng.choice(p["features"]), "user_id": f"u{rng.randint(1, 50)}"}
    p = rng.choice(profiles)
    if kind == "feedback.nps":
        return p, kind, {"score": rng.randint(0, 10), "comment": "ok"}
    if kind == "feedback.happiness":
        return p, kind, {"level": rng.choice(["very_happy", "happy", "neutral", "not_happy"])}
    if kind == "support.ticket":
        return (
            p,
            kind,
            {
                "severity": rng.choice(["low", "normal", "high", "urgent"]),
                "subject": rng.choice(
                    ["Export is broken again, very annoying", "Thanks, works great", "Question about seats"]
                ),
            },
        )
    if kind == "seats.changed":
        return p, kind, {"from": 10, "to": rng.randint(5, 40)}
    return p, kind, {"days": rng.randint(1, 60)}  # a custom type: stored and matched, not rolled up


def api_events(rng, profiles):
    """(arrival, key, item): a daily usage report per account and day, reported the next day,
    then other types up to VALID_API; 2% arrive days late."""
    events = []

    def add(p, kind, at, properties, arrival):
        key = f"evt-{len(events):05d}-{rng.getrandbits(32):08x}"
        item = {
            "id": key,
            "account_id": p["facts"]["id"],
            "type": kind,
            "occurred_at": iso(at),
            "properties": properties,
        }
        events.append(("api", arrival + (rng.uniform(1, 5) if rng.random() < 0.02 else 0), key, item))

    for p in profiles:
        for day in range(DAYS):
            if rng.random() < 0.03:
                continue  # a day without a report
            if p["declining"]:  # active users fall by 70% after the tenth day
                active = p["base"] if day < 10 else p["base"] * 3 // 10
            else:
                active = round(p["base"] * rng.uniform(0.95, 1.05))
            properties = {"active_users": active, "logins": rng.randint(0, 15)}
            if p["features"] and rng.random() < 0.5:
                used = rng.sample(p["features"], rng.randint(1, len(p["features"])))
                properties["features"] = {name: rng.randint(1, 9) for name in used}
            add(p, "usage.daily", START + timedelta(days=day), properties, day + 1 + rng.uniform(0, 0.9))
    assert len(events) < VALID_API
    while len(events) < VALID_API:
        p, kind, properties = other_event(rng, profiles)
        minute = rng.randrange(DAYS * 1440)
        add(p, kind, START + timedelta(minutes=minute), properties, minute / 1440 + rng.uniform(0, 0.3))
    return events


def base_requests(rng, events):
    """Webhooks one by one; usage events in batches of 40-250, posted when full."""
    requests, batch, target = [], [], rng.randint(40, 250)
    for source, _, key, body in sorted(events, key=lambda e: e[1]):
        if source == "crm":
            requests.append(Request("crm", [Delivery(key, body)], len(requests), base=[Delivery(key, body)]))
            continue
        batch.append(Delivery(key, body))
        if len(batch) >= target:
            requests.append(Request("api", batch, len(requests), base=list(batch)))
            batch, target = [], rng.randint(40, 250)
    if batch:
        requests.append(Request("api", batch, len(requests), base=list(batch)))
    return requests


def conflicting(delivery: Delivery) -> Delivery:
    """The same id with other content: the first delivery must win."""
    body = json.loads(json.dumps(delivery.body))
    if "health" in body:
        body["health"]["to"] = next(s for s in STATUSES if s != body["health"]["to"].lower())
    elif "account" in body:  # account.updated
        body["account"]["lifecycle_stage"] = "renewal" if body["account"]["lifecycle_stage"] != "renewal" else "trial"
    elif "active_users" in body["properties"]:
        body["properties"]["active_users"] += 1000
    elif "count" in body["properties"]:
        body["properties"]["count"] += 50
    else:
        body["properties"]["redelivered"] = True
    return Delivery(delivery.key, body)


def add_duplicates(rng, requests):
    crm = [r for r in requests if r.kind == "crm" and r.base]  # the original requests
    api = [r for r in requests if r.kind == "api" and r.base]
    extra, left = [], DUPLICATES
    for i in range(80):  # webhooks re-delivered at once (a lost 202) or much later; 10 with other content
        original = rng.choice(crm)
        copy = conflicting(original.items[0]) if i < 10 else original.items[0]
        later = 0.5 if i % 2 else rng.randint(1, 2000)
        extra.append(Request("crm", [copy], original.slot + later + rng.random() * 0.1))
    left -= 80
    for i in range(60):  # the same id twice in one batch
        batch = rng.choice(api)
        position = rng.randrange(len(batch.base))
        copy = conflicting(batch.base[position]) if i % 6 == 0 else batch.base[position]
        index = batch.items.index(batch.base[position])
        batch.items.insert(rng.randint(index + 1, len(batch.items)), copy)
    left -= 60
    resent = 0
    while resent < 180:  # part of a batch sent again, later, as its own request
        batch = rng.choice(api)
        size = min(rng.randint(10, 60), 180 - resent, len(batch.base))
        start = rng.randrange(len(batch.base) - size + 1)
        extra.append(Request("api", list(batch.base[start : start + size]), batch.slot + rng.randint(1, 1500) + 0.3))
        resent += size
    left -= resent
    for i in range(left):  # single events again inside later batches, 10% with other content
        batch = rng.choice(api[:-1])
        item = rng.choice(batch.base)
        target = rng.choice([r for r in api if r.slot > batch.slot])
        target.items.insert(rng.randint(0, len(target.items)), conflicting(item) if i % 10 == 0 else item)
    requests.extend(extra)


CRM_FAULTS = {
    "wrong-secret": 401,
    "stale-timestamp": 401,
    "tampered-body": 401,
    "no-signature": 401,
    "text-plain": 415,
    "malformed-json": 400,
    "unknown-status": 400,
    "no-health": 400,
    "no-account-id": 400,
    "no-occurred-at": 400,
    "unknown-type": 400,
    "json-array": 400,
}
ITEM_FAULTS = (
    "no-account",
    "nps-out-of-range",
    "type-without-dot",
    "time-not-iso",
    "naive-time",
    "negative-users",
    "no-id",
    "unknown-severity",
    "unknown-field",
    "properties-not-object",
)
API_REQUEST_FAULTS = {"bad-token": 401, "text-plain": 415, "malformed-json": 400}


def bad_item(fault: str, item: dict) -> dict:
    item = json.loads(json.dumps(item))
    properties = item["properties"]
    if fault == "no-account":
        del item["account_id"]
    elif fault == "nps-out-of-range":
        item["type"], item["properties"] = "feedback.nps", {"score": 11}
    elif fault == "type-without-dot":
        item["type"] = "usage"
    elif fault == "time-not-iso":
        item["occurred_at"] = "yesterday"
    elif fault == "naive-time":
        item["occurred_at"] = item["occurred_at"].rstrip("Z")
    elif fault == "negative-users":
        item["type"], item["properties"] = "usage.daily", {**properties, "active_users": -1, "logins": 1}
    elif fault == "no-id":
        del item["id"]
    elif fault == "unknown-severity":
        item["type"], item["properties"] = "support.ticket", {"severity": "critical", "subject": "x"}
    elif fault == "unknown-field":
        item["source"] = "crm"
    else:
        item["properties"] = [1, 2]
    return item


def add_invalid(rng, requests, profiles):
    crm = [r for r in requests if r.kind == "crm" and r.base]  # the original requests
    api = [r for r in requests if r.kind == "api" and r.base]
    extra, count = [], 0
    for i in range(200):  # webhooks; the first 40 are failed first attempts of a valid one (same id, sent before)
        fault = list(CRM_FAULTS)[i % len(CRM_FAULTS)]
        if i < 40:
            original = rng.choice(crm)
            delivery, slot = original.items[0], original.slot - 0.5 - rng.random() * 0.1
        else:
            p = rng.choice(profiles)
            body = {
                "type": "account.health_changed",
                "occurred_at": iso(START),
                "account": p["facts"],
                "health": {"to": rng.choice(STATUSES)},
            }
            delivery, slot = Delivery(f"msg_bad_{i:03d}", body), rng.uniform(0, len(requests))
        extra.append(Request("crm", [Delivery(delivery.key, delivery.body, fault)], slot))
        count += 1
    while count < 230:  # valid events first sent with a wrong token, then again in their own batch
        batch = rng.choice(api)
        size = min(rng.randint(1, 5), 230 - count)
        extra.append(Request("api", list(batch.base[:size]), batch.slot - 0.5, fault="bad-token"))
        count += size
    i = 0
    while count < INVALID:  # events no sender could fix: alone, or batches of only invalid items
        p = rng.choice(profiles)
        template = {
            "id": f"bad-{i:04d}",
            "account_id": p["facts"]["id"],
            "type": "usage.daily",
            "occurred_at": iso(START + timedelta(days=rng.randrange(DAYS))),
            "properties": {"active_users": 5, "logins": 5},
        }
        slot = rng.uniform(0, len(requests))
        if i % 5 == 4:
            fault = list(API_REQUEST_FAULTS)[i // 5 % 3]
            extra.append(Request("api", [Delivery(template["id"], template)], slot, fault=fault))
            count += 1
        else:
            size = min(rng.choice([1, 1, 2, 3, 4]), INVALID - count)
            items = []
            for n in range(size):
                fault = ITEM_FAULTS[(i + n) % len(ITEM_FAULTS)]
                item = bad_item(fault, {**template, "id": f"bad-{i:04d}-{n}"})
                items.append(Delivery(item.get("id", ""), item, fault))
            extra.append(Request("api", items, slot))
            count += size
        i += 1
    requests.extend(extra)


def build_stream(seed=SEED) -> list[Request]:
    rng = random.Random(seed)
    profiles = make_profiles(rng)
    requests = base_requests(rng, crm_events(rng, profiles) + api_events(rng, profiles))
    add_duplicates(rng, requests)
    add_invalid(rng, requests, profiles)
    return sorted(requests, key=lambda r: r.slot)


def send(client, request: Request):
    if request.kind == "crm":
        delivery = request.items[0]
        fault = delivery.fault
        body = broken_webhook(fault, delivery.body) if fault in BODY_FAULTS else delivery.body
        raw = json.dumps(body).encode()
        if fault == "malformed-json":
            raw = raw[:-7]  # signed as sent: only the JSON is wrong
        stale = int(datetime.now().timestamp()) - 400 if fault == "stale-timestamp" else None
        secret = OTHER_SECRET if fault == "wrong-secret" else TEST_SECRET
        headers = signed_headers(raw, msg_id=delivery.key, timestamp=stale, secret=secret)
        if fault == "tampered-body":
            raw = raw.replace(b'"account"', b'"account" ', 1)
        elif fault == "no-signature":
            del headers["webhook-signature"]
        elif fault == "text-plain":
            headers["Content-Type"] = "text/plain"
        return client.post("/webhooks/crm", data=raw, headers=headers)
    items = [d.body for d in request.items]
    raw = json.dumps(items if len(items) > 1 or request.fault else items[0])  # a single object is allowed too
    headers = {"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"}
    if request.fault == "bad-token":
        headers["Authorization"] = "Bearer not-the-token"
    elif request.fault == "text-plain":
        headers["Content-Type"] = "text/plain"
    elif request.fault == "malformed-json":
        raw = raw[:-2]
    return client.post("/api/v1/events", data=raw, headers=headers)


BODY_FAULTS = ("unknown-status", "no-health", "no-account-id", "no-occurred-at", "unknown-type", "json-array")


def broken_webhook(fault: str, body: dict):
    body = json.loads(json.dumps(body))
    if fault in ("unknown-status", "no-health"):
        body["type"] = "account.health_changed"
        body["health"] = {"to": "purple"}
        if fault == "no-health":
            del body["health"]
    elif fault == "no-account-id":
        del body["account"]["id"]
    elif fault == "no-occurred-at":
        del body["occurred_at"]
    elif fault == "unknown-type":
        body["type"] = "account.deleted"
    else:
        body = [body]
    return body


def expected_status(request: Request) -> int:
    if request.kind == "crm":
        return CRM_FAULTS[request.items[0].fault]
    return API_REQUEST_FAULTS[request.fault] if request.fault else 400


# --- the model --------------------------------------------------------------------------------


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class AccountState:
    facts: dict | None = None  # known once a CRM event of the account was processed
    status: str | None = None
    since: datetime | None = None
    history: list = field(default_factory=list)  # (at, status) processed so far
    open_runs: dict = field(default_factory=dict)  # playbook -> run key
    days: dict = field(default_factory=dict)  # date -> {"active_users", "logins", "new_users"}
    features: set = field(default_factory=set)


class Model:
    """What the stream implies, applied in processing order (the order of first deliveries)."""

    def __init__(self):
        self.accounts: dict[str, AccountState] = defaultdict(AccountState)
        self.events: dict[tuple[str, str], dict] = {}  # (source, external id) -> stored body
        self.changes = []  # (account, status, at, previous)
        self.firings: dict[tuple[str, str], str] = {}  # (event external id, rule) -> outcome
        self.runs: dict[tuple[str, str], list] = {}  # (trigger external id, playbook) -> [account, status]
        self.launched = defaultdict(list)  # rule -> [(group, occurred_at)]
        self.first_uses: set[str] = set()

    def apply(self, source: str, key: str, body: dict) -> None:
        self.events[(source, key)] = body
        (self.crm if source == "crm" else self.usage)(key, body)

    def crm(self, key, body):
        account = self.accounts[body["account"]["id"]]
        account.facts = body["account"]  # every webhook of an account carries the same facts, late or not
        if body["type"] != "account.health_changed":
            return
        status, at = body["health"]["to"].lower(), parse_time(body["occurred_at"])
        if account.since is not None and at < account.since:  # late: history only, no rules
            before = [s for t, s in sorted(account.history) if t < at]
            self.changes.append((body["account"]["id"], status, at, before[-1] if before else None))
            account.history.append((at, status))
            return
        previous = account.status
        self.changes.append((body["account"]["id"], status, at, previous))
        account.history.append((at, status))
        account.status, account.since = status, at
        if status == previous:
            return  # a new reason only: no rules, nothing closes
        for playbook, run in list(account.open_runs.items()):
            if status in CLOSES_ON.get(playbook, ()):
                self.runs[run][1] = "cancelled"
                del account.open_runs[playbook]
        self.fire(account, body["account"]["id"], key, HEALTH_RULES[status], HEALTH_RULES[status], at)

    def usage(self, key, item):
        account_id, kind, properties = item["account_id"], item["type"], item["properties"]
        account, at = self.accounts[account_id], parse_time(item["occurred_at"])
        today, used = at.date(), []
        if kind not in USAGE_TYPES:
            return  # stored; no rollup and no rule of ours reads it
        row = account.days.setdefault(today, {"active_users": None, "logins": None, "new_users": 0})
        if kind == "usage.daily":
            row["active_users"], row["logins"] = properties["active_users"], properties["logins"]
            used = [name for name, uses in properties.get("features", {}).items() if uses]
        elif kind == "usage.feature_used":
            used = [properties["feature"]]
        elif kind == "users.added":
            row["new_users"] += properties["count"]
        for feature in used:
            # A first use is an internal event that the server applies after the batch; feature-adoption
            # is concurrent and throttled per feature, so applying it here gives the same outcome.
            if feature not in account.features:
                account.features.add(feature)
                first_use = f"first-use-{account_id}-{feature}"
                self.first_uses.add(first_use)
                self.fire(account, account_id, first_use, "feature-adoption", "feature-adoption", at, feature)
        recent = [r for d, r in account.days.items() if today - timedelta(days=29) <= d <= today]
        facts = account.facts or {}
        stage, segment = facts.get("lifecycle_stage"), facts.get("segment")
        if kind == "usage.daily":
            change = self.active_users_change(account, today)
            if stage in DECLINE_STAGES and change is not None and change <= -20:
                self.fire(account, account_id, key, "usage-decline", "usage-decline", at)
            since = facts.get("customer_since")
            days_as_customer = (today - date.fromisoformat(since)).days if since else None
            if (
                segment in REPORTING_SEGMENTS
                and stage in REPORTING_STAGES
                and not properties.get("features", {}).get("reporting", 0) > 0
                and sum(r["logins"] or 0 for r in recent) >= 20
                and days_as_customer is not None
                and days_as_customer >= 60
            ):
                self.fire(account, account_id, key, "low-reporting-use", "executive-sponsor-review", at)
        if kind == "users.added" and sum(r["new_users"] for r in recent) >= 10:
            self.fire(account, account_id, key, "new-users-training", "new-users-training", at)

    @staticmethod
    def active_users_change(account, today):
        """metrics/usage.yml: active users per calendar day (a day without data is a zero) from the
        account's first day with usage data, the last 30 days against the 30 before, which need
        MIN_BASELINE_DAYS of the account's days."""
        first = min(account.days)

        def per_day(end_back):  # (average, days covered) of the 30 days ending `end_back` days back
            end = today - timedelta(days=end_back)
            if end < first:
                return None, 0
            start = max(end - timedelta(days=29), first)
            total = sum(r["active_users"] or 0 for d, r in account.days.items() if start <= d <= end)
            return total / ((end - start).days + 1), (end - start).days + 1

        (recent, _), (previous, covered) = per_day(0), per_day(30)
        if recent is None or not previous or covered < MIN_BASELINE_DAYS:
            return None
        change = (recent - previous) / previous * 100
        assert not -22 < change < -18, "the stream keeps changes away from the -20% threshold (rounding)"
        return change

    def fire(self, account, account_id, key, rule, playbook, at, feature=None):
        if rule in USAGE_RULES:
            window, group = timedelta(days=USAGE_RULES[rule][1]), (account_id, feature)
            if any(g == group and abs(t - at) < window for g, t in self.launched[rule]):
                self.firings[(key, rule)] = "throttled"
                return
        if rule not in CONCURRENT and playbook in account.open_runs:
            self.firings[(key, rule)] = "run_already_open"
            return
        self.firings[(key, rule)] = "launched"
        self.launched[rule].append(((account_id, feature), at))
        self.runs[(key, playbook)] = [account_id, "waiting"]  # on its people, once its automated steps ran
        if rule not in CONCURRENT:
            account.open_runs[playbook] = (key, playbook)


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture
def no_rate_limits(app):
    """10,000 deliveries from one address in a minute are over the limits by design; the limits
    themselves are tested in tests/intake/test_webhook_intake.py."""
    app.config["RATE_LIMITS_ENABLED"] = False
    yield
    app.config["RATE_LIMITS_ENABLED"] = True


def test_10000_mixed_deliveries_leave_exactly_the_valid_distinct_events_and_their_runs(
    app, client, db, run_jobs, no_rate_limits
):
    stream, model = build_stream(), Model()
    accepted = {"crm": set(), "api": set()}
    tally, since_run, wrong = Counter(), 0, []
    for index, request in enumerate(stream):
        response = send(client, request)
        answer = (
            index,
            request.kind,
            request.fault or [d.fault for d in request.items],
            response.status_code,
            response.get_data(as_text=True)[:120],
        )
        if request.invalid:
            tally["invalid"] += len(request.items)
            details = (response.get_json() or {}).get("details") if response.status_code == 400 else None
            if (
                response.status_code != expected_status(request)
                or request.kind == "api"
                and not request.fault
                and set(details or ()) != {str(i) for i in range(len(request.items))}
            ):  # each bad item by index
                wrong.append(answer)
        else:
            fresh, seen = [], set(accepted[request.kind])
            for delivery in request.items:
                if delivery.key not in seen:
                    fresh.append(delivery)
                    seen.add(delivery.key)
            expected = {"accepted": len(fresh), "duplicates": len(request.items) - len(fresh)}
            if response.status_code != 202 or response.get_json() != expected:
                wrong.append(answer + (expected,))
            tally["valid"] += len(fresh)
            tally["duplicate"] += len(request.items) - len(fresh)
            accepted[request.kind] = seen
            for delivery in fresh:
                model.apply(request.kind, delivery.key, delivery.body)
        since_run += len(request.items)
        if since_run >= CHUNK:
            run_jobs(max_rounds=100)
            since_run = 0
    run_jobs(max_rounds=100)
    assert wrong == []
    assert tally == {"valid": VALID_CRM + VALID_API, "duplicate": DUPLICATES, "invalid": INVALID}
    # The stream stays under the brakes, so every launch the model expects is a launch.
    launches = Counter(rule for (_, rule), outcome in model.firings.items() if outcome == "launched")
    assert all(launches[rule] < brake for rule, (_, _, brake) in USAGE_RULES.items()), launches
    assert all(launches[rule] for rule in (*HEALTH_RULES.values(), *USAGE_RULES)), launches  # every rule fires
    assert_events(db, model)
    assert_history_and_usage(db, model)
    assert_firings_and_runs(db, model)
    assert_each_event_in_exactly_one_job(db)
    assert_applied_in_order_of_arrival(db, model)


def assert_events(db, model):
    rows = db.session.execute(
        select(Event.source, Event.external_id, Event.type, Event.payload, Event.processed_at)
    ).all()
    stored = {(r.source, r.external_id): r.payload for r in rows if r.source in ("crm", "api")}
    assert sorted(set(stored) - set(model.events)) == [] and sorted(set(model.events) - set(stored)) == []
    assert [key for key, body in model.events.items() if stored[key] != body] == []  # the first delivery won
    internal = Counter(r.type for r in rows if r.source == "triage")
    assert set(internal) <= {"usage.feature_first_used", "health.score_band_changed"}
    assert {r.external_id for r in rows if r.type == "usage.feature_first_used"} == model.first_uses
    assert [r.external_id for r in rows if r.processed_at is None] == []
    assert unprocessed(db.session) == 0


def assert_history_and_usage(db, model):
    history = db.session.execute(
        select(HealthChange.account_id, HealthChange.status, HealthChange.at, HealthChange.previous)
    ).all()
    assert Counter((a, s, utc(t), p) for a, s, t, p in history) == Counter(model.changes)
    accounts = {a.id: a for a in db.session.execute(select(Account)).scalars()}
    assert set(accounts) == set(model.accounts)
    assert {i: (a.health_status, a.health_since and utc(a.health_since)) for i, a in accounts.items()} == {
        i: (s.status, s.since) for i, s in model.accounts.items()
    }
    # Exactly once, first delivery wins: a usage event applied twice or a redelivered variant
    # would show in these sums and values.
    usage = db.session.execute(
        select(DailyUsage.account_id, DailyUsage.day, DailyUsage.active_users, DailyUsage.logins, DailyUsage.new_users)
    ).all()
    assert {(a, d): (u, lo, n or 0) for a, d, u, lo, n in usage} == {
        (a, d): (r["active_users"], r["logins"], r["new_users"])
        for a, state in model.accounts.items()
        for d, r in state.days.items()
    }


def assert_firings_and_runs(db, model):
    firings = db.session.execute(
        select(Event.external_id, RuleFiring.rule, RuleFiring.outcome, RuleFiring.run_id).join(
            Event, Event.id == RuleFiring.event_id
        )
    ).all()
    assert len(firings) == len({(f.external_id, f.rule) for f in firings})  # one firing per event and rule
    got = {(f.external_id, f.rule): f.outcome for f in firings}
    assert {k: v for k, v in got.items() if model.firings.get(k) != v} == {}
    assert {k: v for k, v in model.firings.items() if got.get(k) != v} == {}
    runs = db.session.execute(
        select(
            PlaybookRun.id, Event.external_id, PlaybookRun.playbook, PlaybookRun.account_id, PlaybookRun.status
        ).join(Event, Event.id == PlaybookRun.trigger_event_id)
    ).all()
    assert {(r.external_id, r.playbook): [r.account_id, r.status] for r in runs} == model.runs
    assert len(runs) == db.session.query(PlaybookRun).count()
    # Runs are exactly the launches, each linked from its firing.
    assert sorted(f.run_id for f in firings if f.outcome == "launched") == sorted(r.id for r in runs)
    open_tasks = Counter(db.session.execute(select(Task.run_id).where(Task.status.in_(("open", "snoozed")))).scalars())
    assert [r.id for r in runs if r.status == "cancelled" and open_tasks[r.id]] == []
    assert [r.id for r in runs if r.status == "waiting" and not open_tasks[r.id]] == []


def assert_each_event_in_exactly_one_job(db):
    """No event was handed to the workers twice: every event is in exactly one finished job,
    and no job failed."""
    from app.jobs import ALL
    from app.redis_conn import get_redis

    connection = get_redis()
    for name in ALL:
        assert FailedJobRegistry(name, connection=connection).get_job_ids() == [], name
    ids = FinishedJobRegistry("events", connection=connection).get_job_ids()
    handed = Counter()
    for job in Job.fetch_many(ids, connection=connection):
        argument = job.args[0]
        handed.update(argument if isinstance(argument, list) else [argument])
    assert [i for i, n in handed.items() if n > 1] == []
    assert sorted(handed) == sorted(db.session.execute(select(Event.id)).scalars())


def assert_applied_in_order_of_arrival(db, model):
    """Events of one account are applied in the order of their first delivery (README,
    "Guarantees"); a duplicate must not move its event. Last, so that a failure here comes
    after everything else was checked."""
    applied = defaultdict(list)
    for account_id, key in db.session.execute(
        select(Event.account_id, Event.external_id).where(Event.source.in_(("crm", "api"))).order_by(Event.processed_at)
    ):
        applied[account_id].append(key)
    arrived = defaultdict(list)
    for (_, key), body in model.events.items():  # in order of first delivery
        arrived[body.get("account_id") or body["account"]["id"]].append(key)
    moved = {
        a: [(i, want, got) for i, (want, got) in enumerate(zip(keys, applied[a], strict=False)) if want != got][:2]
        for a, keys in arrived.items()
        if applied[a] != keys
    }
    assert moved == {}, "account: [(position, arrived, applied)]"
