"""Sample runs of the handbook's playbooks (seed 004 events, monthly check-in) and `flask playbooks check`."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.intake.store import store_event
from app.models import MailLog, PlaybookRun, Task
from app.models.watchlist import WatchListEntry
from app.playbooks.cli import playbooks as playbooks_cli
from app.playbooks.loader import load_playbooks
from tests.helpers import ROOT, launch_playbook, make_account, steps_of


def usage_event(db, type_, properties, external_id="evt-1"):
    at = datetime(2026, 11, 20, tzinfo=UTC)
    event = store_event(
        source="api",
        external_id=external_id,
        type=type_,
        account_id="acme",
        occurred_at=at,
        payload={
            "id": external_id,
            "account_id": "acme",
            "type": type_,
            "occurred_at": at.isoformat(),
            "properties": properties,
        },
    )
    db.session.commit()
    return event


def tasks_of(db, run_id):
    return db.session.execute(select(Task).where(Task.run_id == run_id).order_by(Task.id)).scalars().all()


def test_the_playbook_files_load_with_the_names_the_rules_use():
    loaded = load_playbooks(str(ROOT / "playbooks"))
    assert {"usage-decline", "new-users-training", "feature-adoption", "monthly-check-in"} <= set(loaded)
    assert loaded["red-action-plan"].close_on_health == ("green",)
    assert loaded["black-save-attempt"].close_on_health == ("green", "yellow")


def test_usage_decline_watch_list_win_back_plan_and_webinar_invitations(db, app, run_jobs, smtp_inbox):
    make_account(db)
    event = usage_event(db, "usage.daily", {"active_users": 30, "logins": 40})
    run_id = launch_playbook(db, "usage-decline", event=event)
    run_jobs()
    [entry] = db.session.execute(select(WatchListEntry)).scalars().all()
    assert (entry.list_name, entry.account_id, entry.run_id) == ("usage-decline", "acme", run_id)
    [plan] = tasks_of(db, run_id)
    assert plan.assignee == "mo@vendor.example" and plan.priority == "high" and "Win-back" in plan.title
    assert plan.due_at.weekday() < 5
    assert sorted(r[0] for r, _ in smtp_inbox.messages) == ["jane@acme.example", "max@acme.example"]
    assert "training webinars" in smtp_inbox.messages[0][1]
    assert db.session.get(PlaybookRun, run_id).status == "waiting"  # on the manager


def test_ten_new_users_schedule_a_training(db, run_jobs):
    make_account(db)
    event = usage_event(db, "users.added", {"count": 12})
    run_id = launch_playbook(db, "new-users-training", event=event)
    [task] = tasks_of(db, run_id)
    assert task.title == "Schedule training for the new users of Acme GmbH"
    assert "12 new users" in task.instructions and task.outcomes == ["scheduled", "declined"]


def test_first_use_of_a_feature_mails_best_practices_and_reviews_in_30_days(db, run_jobs):
    make_account(db)
    event = usage_event(db, "usage.feature_used", {"feature": "reporting"})
    run_id = launch_playbook(db, "feature-adoption", event=event)
    run_jobs()
    [review] = tasks_of(db, run_id)
    assert review.title == "Adoption review of reporting with Acme GmbH"
    assert 29 <= (review.due_at - review.created_at).days <= 30
    mails = db.session.execute(select(MailLog).where(MailLog.run_id == run_id)).scalars().all()
    assert len(mails) == 2 and all("reporting" in m.subject for m in mails)
    # concurrent: another feature gets its own run
    other = usage_event(db, "usage.feature_used", {"feature": "export"}, external_id="evt-2")
    assert launch_playbook(db, "feature-adoption", event=other) is not None


def test_monthly_check_in_is_a_csm_task_and_runs_once_at_a_time(db):
    make_account(db)
    run_id = launch_playbook(db, "monthly-check-in")
    [task] = tasks_of(db, run_id)
    assert task.assignee == "ana@vendor.example" and task.title == "Monthly check-in with Acme GmbH"
    assert launch_playbook(db, "monthly-check-in") is None  # not concurrent


def test_executive_sponsor_review_for_low_reporting_use(db):
    make_account(db)
    [task] = tasks_of(db, launch_playbook(db, "executive-sponsor-review"))
    assert "executive sponsor" in task.title


def test_flask_playbooks_check(app, tmp_path):
    runner = app.test_cli_runner()
    result = runner.invoke(playbooks_cli, ["check", str(ROOT / "playbooks")])
    assert result.exit_code == 0 and "playbooks" in result.output and "OK" in result.output
    (tmp_path / "bad.yml").write_text(
        textwrap.dedent("""
        name: bad
        steps:
          - name: hook
            action: webhook
            with: {url: "ftp://x", format: discord}
          - name: t
            timeout: 5
            task: {title: x, assignee: csops}
    """).lstrip()
    )
    result = runner.invoke(playbooks_cli, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}/bad.yml:5:" in result.output and "discord" in result.output
    assert "`timeout:` is only for action steps" in result.output
    result = runner.invoke(playbooks_cli, ["actions"])
    for name in (
        "webhook",
        "crm_writeback",
        "add_to_watch_list",
        "remove_from_watch_list",
        "launch_playbook",
        "gdpr_export",
        "gdpr_offboard",
        "gdpr_notify_processors",
        "wait",
        "send_email",
    ):
        assert name + ":" in result.output


@pytest.mark.parametrize(
    "close_when, message",
    [
        ("close_when: {health: []}", "close_when.health"),
        ("close_when: {note: x}", "close_when"),
    ],
)
def test_close_when_is_checked(tmp_path, close_when, message):
    from app.filecheck import FileErrors

    (tmp_path / "p.yml").write_text(f"name: p\n{close_when}\nsteps:\n  - name: t\n    task: {{title: x}}\n")
    with pytest.raises(FileErrors) as caught:
        load_playbooks(str(tmp_path))
    assert f"{tmp_path}/p.yml:2:" in str(caught.value) and message in str(caught.value)


def test_a_step_can_depend_on_an_account_fact(db, run_jobs, tmp_path):
    from app.models import Account

    (tmp_path / "p.yml").write_text(
        textwrap.dedent("""
        name: by-segment
        concurrent: true
        steps:
          - name: enterprise-only
            when: {account: {segment: [enterprise, strategic]}}
            task: {title: "Executive call"}
          - name: any-premier
            after: []
            when: {account: {plan: premier}}
            task: {title: "Premier review"}
    """)
    )
    playbook = load_playbooks(str(tmp_path))["by-segment"]
    make_account(db, segment="enterprise", plan="standard")
    run_id = launch_playbook(db, "by-segment", playbook=playbook)
    steps = steps_of(db, run_id)
    assert (steps["enterprise-only"].status, steps["any-premier"].status) == ("open", "skipped")
    db.session.get(Account, "acme").segment = "smb"
    db.session.commit()
    steps = steps_of(db, launch_playbook(db, "by-segment", playbook=playbook))
    assert steps["enterprise-only"].status == "skipped"


@pytest.mark.parametrize(
    "when, message",
    [
        ("{account: {segmnt: smb}}", "unknown account fact 'segmnt'"),
        ("{step: t}", "outcome"),
        ("{}", "when"),
    ],
)
def test_when_on_account_facts_is_checked(tmp_path, when, message):
    from app.filecheck import FileErrors

    (tmp_path / "p.yml").write_text(
        f"name: p\nsteps:\n  - name: t\n    task: {{title: x}}\n  - name: u\n    when: {when}\n    task: {{title: y}}\n"
    )
    with pytest.raises(FileErrors) as caught:
        load_playbooks(str(tmp_path))
    assert f"{tmp_path}/p.yml:6:" in str(caught.value) and message in str(caught.value), str(caught.value)


def test_end_to_end_ten_new_users_through_the_api_and_the_rules(client, db, auth, run_jobs):
    """The API event, the rules (rules/early-warning.yml) and this playbook, on real Redis and RQ."""
    make_account(db, lifecycle_stage="adoption")
    events = [
        {
            "id": f"users-{i}",
            "account_id": "acme",
            "type": "users.added",
            "occurred_at": f"2026-11-{10 + i:02d}T09:00:00Z",
            "properties": {"count": 5},
        }
        for i in range(2)
    ]
    response = client.post("/api/v1/events", json=events, headers=auth)
    assert response.status_code == 202, response.get_data(as_text=True)
    run_jobs()
    runs = db.session.execute(select(PlaybookRun).where(PlaybookRun.playbook == "new-users-training")).scalars().all()
    assert len(runs) == 1 and runs[0].rule == "new-users-training"
    [task] = tasks_of(db, runs[0].id)
    assert task.assignee == "ana@vendor.example" and "10 new users" in task.instructions


def test_end_to_end_a_20_percent_decline_through_the_api_and_the_rules(client, db, auth, run_jobs):
    from datetime import date, timedelta

    make_account(db, lifecycle_stage="adoption")
    make_account(db, "steady", name="Steady AG", lifecycle_stage="adoption")
    start = date(2026, 9, 1)
    events = [
        {
            "id": f"{account}-daily-{i}",
            "account_id": account,
            "type": "usage.daily",
            "occurred_at": f"{start + timedelta(days=i)}T00:00:00Z",
            "properties": {"active_users": active(i), "logins": 100, "features": {"reporting": 3}},
        }
        for account, active in (
            ("acme", lambda i: 50 if i < 30 else 30),  # a 40% decline
            ("steady", lambda i: 50 + (i % 7) - 3),
        )  # noise around 50
        for i in range(60)
    ]
    assert client.post("/api/v1/events", json=events, headers=auth).status_code == 202
    run_jobs(max_rounds=60)
    [run] = db.session.execute(select(PlaybookRun).where(PlaybookRun.playbook == "usage-decline")).scalars().all()
    assert run.rule == "usage-decline" and run.account_id == "acme"  # the stable account: nothing
    assert db.session.execute(select(WatchListEntry.list_name)).scalars().all() == ["usage-decline"]
    [plan] = tasks_of(db, run.id)
    assert plan.assignee == "mo@vendor.example"
    mails = db.session.execute(select(MailLog.to).where(MailLog.run_id == run.id)).scalars().all()
    assert sorted(mails) == ["jane@acme.example", "max@acme.example"]
