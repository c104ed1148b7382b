"""Rules at work, against the real database: throttle, brake, priority, params, admin switches,
scheduled rules, hot reload, backtest, and the `flask rules` commands. Each test runs its own
rule and playbook files from a temp folder."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import catalog
from app.matching.enforcer import enforce
from app.matching.facts import event_facts
from app.models import Account, AuditEntry, Event, PlaybookRun, RuleFiring, User
from app.models.rule_state import RuleState
from tests.helpers import write_file

NOW = datetime.now(UTC).replace(microsecond=0)
PLAYBOOK = """
name: {name}
concurrent: true
steps:
  - name: look
    task:
      title: "Look at {{{{ account.id }}}}"
      assignee: csm
"""


@pytest.fixture
def rules(app, db, tmp_path):
    """install(rules_yaml): make these rules (and playbooks `decline`, `other`, `check-in`) live."""
    saved = app.extensions["triage_catalog"], app.extensions["triage_catalog_reloading"]
    for name in ("decline", "other", "check-in"):
        write_file(tmp_path / "playbooks" / f"{name}.yml", PLAYBOOK.format(name=name))

    def install(text: str, interval: float = 0):
        write_file(tmp_path / "rules" / "rules.yml", text)
        state = catalog._Reloading(
            str(tmp_path / "rules"), str(tmp_path / "playbooks"), str(tmp_path / "reload-marker"), interval
        )
        live = catalog.load_catalog(state.rules_dir, state.playbooks_dir)
        live.signature = catalog._signature(state)
        app.extensions["triage_catalog"], app.extensions["triage_catalog_reloading"] = live, state
        return live

    install.folder = tmp_path
    yield install
    app.extensions["triage_catalog"], app.extensions["triage_catalog_reloading"] = saved


def make_account(db, account_id="acme", **fields):
    values = dict(
        name=f"{account_id.title()} GmbH",
        segment="enterprise",
        lifecycle_stage="adoption",
        csm="ana@vendor.example",
        manager="mo@vendor.example",
    )
    values.update(fields)
    account = db.session.get(Account, account_id) or Account(id=account_id, **values)
    db.session.add(account)
    db.session.commit()
    return account


_ids = iter(range(1, 10**9))


def fire(db, account, type_="usage.daily", at=NOW, metrics=None, properties=None):
    """Store an event, build its facts and enforce the live rules on it, like process_event."""
    n = next(_ids)
    event = Event(
        source="api",
        external_id=f"evt-{n}",
        type=type_,
        account_id=account.id,
        occurred_at=at,
        payload={
            "id": f"evt-{n}",
            "account_id": account.id,
            "type": type_,
            "occurred_at": at.isoformat(),
            "properties": properties or {},
        },
        processed_at=at,
    )
    db.session.add(event)
    db.session.flush()
    facts = event_facts(event=event, account=account, metrics=metrics or {})
    firings = enforce(facts, event, account)
    db.session.commit()
    return [(f.rule, f.outcome) for f in firings]


DECLINE = """
rules:
  - name: decline
    on: usage.daily
    if: metrics.active_users_change_pct_30d <= -20
    throttle: {once_within: 30 days}
    playbook: decline
    params: {why: "down {{ metrics.active_users_change_pct_30d }}% ({{ event.id }})"}
"""
DOWN = {"active_users_change_pct_30d": -25.0}


def test_a_fired_rule_records_version_facts_and_rendered_params(db, rules):
    live = rules(DECLINE)
    acme = make_account(db)
    assert fire(db, acme, metrics={"active_users_change_pct_30d": -5}) == []
    assert fire(db, acme, metrics=DOWN) == [("decline", "launched")]
    firing = db.session.scalars(select(RuleFiring)).one()
    assert firing.ruleset_version == live.ruleset.version and firing.occurred_at == NOW
    assert firing.facts["metrics"] == DOWN and firing.throttle_key == '["acme"]'
    run = db.session.get(PlaybookRun, firing.run_id)
    assert run.context["params"] == {"why": f"down -25.0% ({firing.facts['event']['id']})"}


def test_throttle_once_per_account_within_the_window_in_event_time(db, rules):
    rules(DECLINE)
    acme, globex = make_account(db), make_account(db, "globex")
    assert fire(db, acme, metrics=DOWN) == [("decline", "launched")]
    assert fire(db, acme, metrics=DOWN, at=NOW + timedelta(days=10)) == [("decline", "throttled")]
    assert fire(db, acme, metrics=DOWN, at=NOW - timedelta(days=10)) == [("decline", "throttled")]  # late event
    assert fire(db, globex, metrics=DOWN, at=NOW + timedelta(days=10)) == [("decline", "launched")]
    assert fire(db, acme, metrics=DOWN, at=NOW + timedelta(days=31)) == [("decline", "launched")]


def enable_logs(*names):
    # Alembic's fileConfig (run by the session's migration) disables loggers that existed then.
    for name in names:
        logging.getLogger(name).disabled = False


def test_the_brake_pauses_the_rule_until_cs_ops_resume_it(db, rules, caplog):
    enable_logs("app.matching.enforcer")
    rules("""
        rules:
          - name: decline
            on: usage.daily
            brake: {max: 2, per: hour}
            playbook: decline
    """)
    accounts = [make_account(db, f"a{i}") for i in range(5)]
    assert [fire(db, account) for account in accounts[:4]] == [
        [("decline", "launched")],
        [("decline", "launched")],
        [("decline", "braked")],
        [("decline", "paused")],
    ]
    state = db.session.get(RuleState, "decline")
    assert state.paused_at is not None and "over budget: 2 launches in the last hour" in state.paused_reason
    assert "rule decline paused by its brake" in caplog.text
    assert db.session.scalars(select(AuditEntry.action)).all() == ["rule.paused"]
    assert db.session.scalar(select(func.count(PlaybookRun.id))) == 2
    state.paused_at = None  # what Resume does (tested through the admin below)
    db.session.commit()
    db.session.execute(RuleFiring.__table__.update().values(fired_at=NOW - timedelta(hours=2)))
    assert fire(db, accounts[4]) == [("decline", "launched")]


def test_priority_decides_between_rules_launching_the_same_playbook(db, rules):
    rules("""
        rules:
          - name: low
            on: usage.daily
            playbook: decline
          - name: high
            on: usage.daily
            priority: 5
            playbook: decline
          - name: throttled-top
            on: usage.daily
            priority: 9
            throttle: {once_within: 1 day}
            playbook: other
          - name: other-low
            on: usage.daily
            playbook: other
    """)
    acme = make_account(db)
    assert fire(db, acme) == [
        ("throttled-top", "launched"),
        ("high", "launched"),
        ("low", "superseded"),
        ("other-low", "superseded"),
    ]
    # the top rule is throttled now: the next one for its playbook launches instead
    assert fire(db, acme) == [
        ("throttled-top", "throttled"),
        ("high", "launched"),
        ("low", "superseded"),
        ("other-low", "launched"),
    ]


def test_params_with_an_undefined_name_launch_nothing(db, rules):
    rules("""
        rules:
          - name: decline
            on: usage.daily
            playbook: decline
            params: {feature: "{{ event.properties.feature }}"}
    """)
    acme = make_account(db)
    assert fire(db, acme) == [("decline", "param_error")]
    assert "feature" in db.session.scalars(select(RuleFiring.detail)).one()
    assert fire(db, acme, properties={"feature": "reporting"}) == [("decline", "launched")]
    assert db.session.scalar(select(func.count(PlaybookRun.id))) == 1


def test_rule_state_overrides_the_file(db, rules):
    rules("""
        rules:
          - name: on-in-file
            on: usage.daily
            playbook: decline
          - name: off-in-file
            enabled: false
            on: usage.daily
            playbook: other
    """)
    acme = make_account(db)
    assert fire(db, acme) == [("on-in-file", "launched")]
    db.session.add_all([RuleState(rule="on-in-file", enabled=False), RuleState(rule="off-in-file", enabled=True)])
    db.session.commit()
    assert fire(db, acme) == [("off-in-file", "launched")]


# --- scheduled rules -------------------------------------------------------------------------


def test_scheduled_rules_launch_once_per_account_and_period(db, rules):
    from app.matching.scheduled_rules import run_due_schedules

    rules("""
        rules:
          - name: monthly
            on: schedule
            schedule: {every: month}
            if: account.health != "black"
            playbook: check-in
          - name: renewal
            on: schedule
            schedule: {days_before_renewal: 90}
            playbook: other
    """)
    today = NOW.date()
    make_account(db, "soon", renewal_date=today + timedelta(days=30))
    make_account(db, "later", renewal_date=today + timedelta(days=200))
    make_account(db, "churned", health_status="black")
    make_account(db, "gone", erased_at=NOW)
    assert run_due_schedules(NOW) == {"due": 4, "fired": 3}
    assert run_due_schedules(NOW + timedelta(hours=5)) == {"due": 0, "fired": 0}  # idempotent
    runs = db.session.execute(select(PlaybookRun.playbook, PlaybookRun.account_id)).all()
    assert sorted(runs) == [("check-in", "later"), ("check-in", "soon"), ("other", "soon")]
    next_month = datetime(today.year + (today.month == 12), today.month % 12 + 1, 2, tzinfo=UTC)
    assert run_due_schedules(next_month)["fired"] == 2  # monthly again; the renewal once per date


# --- hot reload ------------------------------------------------------------------------------


def test_hot_reload_takes_a_good_set_and_refuses_a_broken_one(app, db, rules, caplog):
    enable_logs("app.catalog")
    first = rules(DECLINE, interval=0.01)
    acme = make_account(db)
    path = rules.folder / "rules" / "rules.yml"
    time.sleep(0.02)
    write_file(path, DECLINE.replace("<= -20", "<= -10"))
    assert catalog.current() is not first
    second = catalog.current()
    assert second.ruleset.version != first.ruleset.version
    assert fire(db, acme, metrics={"active_users_change_pct_30d": -15}) == [("decline", "launched")]

    time.sleep(0.02)
    write_file(path, DECLINE.replace("metrics.active_users_change_pct_30d", "metrics.nope"))
    assert catalog.current() is second  # refused: the last good set keeps running
    error, _ = catalog.reload_error(app)
    assert f"{path}:4:9: condition: unknown metric 'nope'" in error
    assert "do not load; still running version" in caplog.text
    assert fire(db, make_account(db, "globex"), metrics=DOWN) == [("decline", "launched")]

    time.sleep(0.02)
    write_file(path, DECLINE)
    assert catalog.current().ruleset.version == first.ruleset.version and catalog.reload_error(app) == (None, None)


def test_flask_rules_commands(app, db, rules, tmp_path):
    rules(DECLINE)
    runner = app.test_cli_runner()
    good = tmp_path / "candidate"
    write_file(
        good / "r.yml",
        """
        rules:
          - name: decline
            on: usage.daily
            if: metrics.active_users_change_pct_30d <= -20
            playbook: decline
            tests:
              - name: wrong on purpose
                facts: {metrics: {active_users_change_pct_30d: -5}}
                fires: true
    """,
    )
    result = runner.invoke(args=["rules", "test", "--rules", str(good)])
    assert result.exit_code == 1
    assert "does not fire for test 'wrong on purpose'" in result.output
    assert (
        "failed: metrics.active_users_change_pct_30d <= -20 (metrics.active_users_change_pct_30d is -5)"
        in result.output
    )

    write_file(
        good / "r.yml", "rules:\n  - name: decline\n    on: usage.daily\n    if: metrics.x < 1\n    playbook: decline\n"
    )
    result = runner.invoke(args=["rules", "check", "--rules", str(good)])
    assert result.exit_code == 1 and f"{good / 'r.yml'}:4:9: condition: unknown metric 'x'" in result.output

    event = tmp_path / "event.json"
    event.write_text(json.dumps({"type": "usage.daily", "metrics": {"active_users_change_pct_30d": -3}}))
    result = runner.invoke(args=["rules", "explain", str(event)])
    assert result.exit_code == 0, result.output
    assert "no     decline" in result.output and "metrics.active_users_change_pct_30d is -3" in result.output

    # an events-API event: the stored account (and its metrics, when the signals exist) are added
    make_account(db, "acme", segment="smb")
    event.write_text(
        json.dumps(
            {
                "id": "evt-1",
                "account_id": "acme",
                "type": "usage.daily",
                "occurred_at": "2026-11-20T00:00:00Z",
                "properties": {"active_users": 3},
            }
        )
    )
    result = runner.invoke(args=["rules", "explain", str(event)])
    assert result.exit_code == 0, result.output
    assert "no     decline" in result.output and "metrics.active_users_change_pct_30d is" in result.output

    marker = Path(app.instance_path) / catalog.RELOAD_MARKER
    before = marker.stat().st_mtime_ns if marker.exists() else 0
    result = runner.invoke(args=["rules", "reload"])
    assert result.exit_code == 0 and marker.stat().st_mtime_ns > before


# --- backtest --------------------------------------------------------------------------------


def test_backtest_replays_stored_events_without_side_effects(app, db, rules, tmp_path):
    rules(DECLINE)  # the live rules: a 20% decline
    make_account(db)
    for day in range(0, 50, 5):  # one stored usage event every 5 days
        event = Event(
            source="api",
            external_id=f"bt-{day}",
            type="usage.daily",
            account_id="acme",
            occurred_at=NOW - timedelta(days=60 - day),
            processed_at=NOW,
            payload={"properties": {"active_users": 10}},
        )
        db.session.add(event)
    db.session.add(
        Event(
            source="api",
            external_id="old",
            type="usage.daily",
            account_id="acme",
            occurred_at=NOW - timedelta(days=200),
            processed_at=NOW,
            payload={},
        )
    )
    db.session.commit()
    candidate = tmp_path / "candidate"
    write_file(
        candidate / "r.yml",
        """
        rules:
          - name: every-usage
            on: usage.daily
            throttle: {once_within: 7 days}
            playbook: decline
    """,
    )
    from app.matching.backtest import replay
    from app.matching.loader import load_rules
    from app.matching.matcher import Matcher
    from app.playbooks.loader import load_playbooks

    cand = Matcher(load_rules(str(candidate), load_playbooks(str(rules.folder / "playbooks"))))
    report = replay(
        cand, catalog.current().matcher, NOW - timedelta(days=90), NOW + timedelta(seconds=1), with_metrics=False
    )
    assert report.events == 10
    rows = {row["rule"]: row for row in report.rows()}
    assert rows["every-usage"]["candidate"] == 5 and rows["every-usage"]["live"] == 0  # every other, 7-day throttle
    assert sum(report.candidate.per_csm_week.values()) == 5
    assert {csm for (_, csm, _) in report.candidate.per_csm_week} == {"ana@vendor.example"}
    assert db.session.scalar(select(func.count(RuleFiring.id))) == 0
    assert db.session.scalar(select(func.count(PlaybookRun.id))) == 0

    result = app.test_cli_runner().invoke(
        args=["rules", "backtest", "--since", "90d", "--rules", str(candidate), "--no-metrics", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output[result.output.index("{") :])
    assert data["events"] == 10 and data["rules"][0]["rule"] == "every-usage"


# --- the admin's rules page --------------------------------------------------------------------


def sign_in(application, db, email, role):
    from app.extensions import db as database

    user = User(email=email, name=email.split("@")[0], role=role)
    user.set_password("correct-horse-1")
    database.session.add(user)
    database.session.commit()
    client = application.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    assert (
        client.post("/login", data={"email": email, "password": "correct-horse-1", "csrf_token": token}).status_code
        == 302
    )
    return client


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def test_rules_page_shows_rules_and_cs_ops_switch_them(app, db, rules):
    from flask import g, request_started

    def fresh_g(sender, **extra):  # each test request sees a fresh `g`, as a real request does
        g.__dict__.clear()

    live = rules(DECLINE)
    acme = make_account(db)
    fire(db, acme, metrics=DOWN)
    db.session.add(RuleState(rule="decline", paused_at=NOW, paused_reason="over budget: test"))
    db.session.commit()
    request_started.connect(fresh_g, app)
    try:
        ops = sign_in(app, db, "ops@vendor.example", "csops")
        page = ops.get("/admin/rules/").get_data(as_text=True)
        assert "decline" in page and live.ruleset.version in page and "over budget: test" in page
        assert re.search(r"<td>1</td>\s*<td>1</td>", page)  # fires over 7 and 30 days
        response = ops.post("/admin/rules/resume", data={"rule": "decline", "csrf_token": _csrf(page)})
        assert response.status_code == 302
        response = ops.post("/admin/rules/disable", data={"rule": "decline", "csrf_token": _csrf(page)})
        assert response.status_code == 302
        db.session.expire_all()
        state = db.session.get(RuleState, "decline")
        assert (state.enabled, state.paused_at, state.updated_by) == (False, None, "ops@vendor.example")
        assert db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all() == [
            "rule.resumed",
            "rule.disabled",
        ]
        assert ops.post("/admin/rules/enable", data={"rule": "decline"}).status_code == 400  # no CSRF token
        assert fire(db, acme, metrics=DOWN, at=NOW + timedelta(days=60)) == []  # disabled: nothing fires

        manager = sign_in(app, db, "mo@vendor.example", "manager")
        page = manager.get("/admin/rules/").get_data(as_text=True)
        assert "decline" in page and "/admin/rules/enable" not in page
        assert (
            manager.post("/admin/rules/enable", data={"rule": "decline", "csrf_token": _csrf(page)}).status_code == 403
        )
        csm = sign_in(app, db, "ana@vendor.example", "csm")
        assert csm.get("/admin/rules/").status_code == 403
    finally:
        request_started.disconnect(fresh_g, app)


def test_rules_page_shows_a_refused_reload(app, db, rules):
    from flask import g, request_started

    def fresh_g(sender, **extra):
        g.__dict__.clear()

    rules(DECLINE, interval=0.01)
    time.sleep(0.02)
    write_file(rules.folder / "rules" / "rules.yml", DECLINE.replace("playbook: decline", "playbook: nope"))
    request_started.connect(fresh_g, app)
    try:
        ops = sign_in(app, db, "ops@vendor.example", "csops")
        page = ops.get("/admin/rules/").get_data(as_text=True)
        assert "were refused" in page and "unknown playbook &#39;nope&#39;" in page
    finally:
        request_started.disconnect(fresh_g, app)


# --- facts -------------------------------------------------------------------------------------


def test_event_facts_are_json_native_and_in_event_time(db):
    acme = make_account(
        db, renewal_date=date(2027, 3, 31), customer_since=date(2025, 3, 31), arr=120000, health_status="red", score=41
    )
    at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    event = Event(
        source="crm",
        external_id="msg_1",
        type="account.health_changed",
        account_id="acme",
        occurred_at=at,
        payload={"health": {"to": "red"}},
    )
    facts = event_facts(
        event=event,
        account=acme,
        metrics={"logins_7d": 12, "nps_last": None},
        health={"to": "red", "from": "yellow", "crm_from": "green"},
    )
    assert json.loads(json.dumps(facts)) == facts
    assert (facts["type"], facts["to"], facts["from"], facts["crm_from"]) == (
        "account.health_changed",
        "red",
        "yellow",
        "green",
    )
    assert facts["event"] == {
        "id": "msg_1",
        "type": "account.health_changed",
        "occurred_at": "2026-11-20T10:00:00+00:00",
        "properties": {},
    }
    account = facts["account"]
    assert (account["days_to_renewal"], account["days_as_customer"], account["arr"], account["score"]) == (
        131,
        599,
        120000.0,
        41,
    )
    assert facts["metrics"] == {"logins_7d": 12, "nps_last": None}


def test_reloads_start_no_threads_and_keep_matching(app, db, rules):
    import threading

    rules(DECLINE, interval=0.0001)
    marker = rules.folder / "reload-marker"
    before = threading.active_count()
    old = catalog.current().matcher
    for n in range(100):
        stamp = time.time() + n
        marker.write_text(str(n))
        os.utime(marker, (stamp, stamp))
        assert catalog.refresh(app, force=True)  # a new catalog every time
        assert [r.name for r in catalog.current().matcher.match({"type": "usage.daily", "metrics": DOWN})] == [
            "decline"
        ]
    assert threading.active_count() == before
    assert old.match({"type": "usage.daily", "metrics": DOWN})  # a matcher still held keeps working


def test_rules_page_shows_each_rules_last_error(app, db, rules):
    from flask import g, request_started

    from app.models import PlaybookRun

    def fresh_g(sender, **extra):
        g.__dict__.clear()

    rules(DECLINE)
    acme = make_account(db)
    fire(db, acme, metrics=DOWN)
    firing = db.session.scalars(select(RuleFiring)).one()
    # An older refusal, then a newer failed run: the newer one is the rule's last error.
    firing.outcome, firing.detail, firing.fired_at = "param_error", "'{{ nope }}' is undefined", NOW - timedelta(days=2)
    db.session.add(
        PlaybookRun(
            playbook="p",
            playbook_version="1",
            account_id=acme.id,
            rule="decline",
            status="failed",
            status_note="step notify: <b>SMTP refused</b>",
            started_at=NOW - timedelta(days=1),
            finished_at=NOW - timedelta(hours=20),
        )
    )
    db.session.commit()
    request_started.connect(fresh_g, app)
    try:
        page = sign_in(app, db, "ops@vendor.example", "csops").get("/admin/rules/").get_data(as_text=True)
        cell = re.search(r'<td class="small rule-error">(.*?)</td>', page, re.S).group(1)
        assert "run failed: step notify: &lt;b&gt;SMTP refused&lt;/b&gt;" in cell and "/admin/playbookrun/" in cell
        db.session.execute(db.text("UPDATE playbook_runs SET rule = NULL WHERE status = 'failed'"))
        db.session.commit()
        page = sign_in(app, db, "mo@vendor.example", "manager").get("/admin/rules/").get_data(as_text=True)
        cell = re.search(r'<td class="small rule-error">(.*?)</td>', page, re.S).group(1)
        assert "param_error: &#39;{{ nope }}&#39; is undefined" in cell
    finally:
        request_started.disconnect(fresh_g, app)
