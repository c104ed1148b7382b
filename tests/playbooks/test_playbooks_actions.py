"""Automated action types on real services: a local HTTP receiver, Redis and an RQ worker."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.intake.signatures import verify
from app.models import PlaybookRun
from app.models.watchlist import WatchListEntry
from app.playbooks.calendar import add_business_days
from app.playbooks.loader import load_playbooks
from tests.helpers import launch_playbook, make_account, steps_of

HOOKS = """
name: hooks
steps:
  - name: to-json
    action: webhook
    with: {url: "{{ params.url }}/json", text: "{{ account.name }} needs attention"}
  - name: to-slack
    after: []
    action: webhook
    with: {url: "{{ params.url }}/slack", format: slack, text: "Red: {{ account.name }}"}
  - name: to-teams
    after: []
    action: webhook
    timeout: 30
    with: {url: "{{ params.url }}/teams", format: teams, text: "Red: {{ account.name }}"}
  - name: crm
    after: []
    action: crm_writeback
    with: {fields: {triage_status: "{{ run.playbook }}"}, note: "Playbook {{ run.playbook }} started"}
"""


def hooks_playbook(tmp_path, text=HOOKS, also=()):
    """Load a test playbook (with copies of the named real playbooks it refers to)."""
    from tests.helpers import ROOT

    for name in also:
        (tmp_path / f"{name}.yml").write_text((ROOT / "playbooks" / f"{name}.yml").read_text())
    (tmp_path / "p.yml").write_text(textwrap.dedent(text))
    name = textwrap.dedent(text).split("name:", 1)[1].split()[0]
    return load_playbooks(str(tmp_path))[name]


@pytest.fixture
def hooks_catalog(app, tmp_path):
    """The live catalog plus a test playbook, for run_step to find it."""
    from app import catalog

    playbook = hooks_playbook(tmp_path)
    current = catalog.current()
    current.playbooks[playbook.name] = playbook
    yield playbook
    current.playbooks.pop(playbook.name, None)


def test_webhooks_are_signed_and_shaped_for_json_slack_and_teams(db, app, receiver, run_jobs, hooks_catalog):
    make_account(db)
    app.config["CRM_CALLBACK_URL"] = None
    run_id = launch_playbook(db, "hooks", params={"url": receiver.url}, playbook=hooks_catalog)
    run_jobs()
    steps = steps_of(db, run_id)
    assert {name: s.status for name, s in steps.items()} == dict.fromkeys(steps, "succeeded")
    by_path = {r["path"]: r for r in receiver.requests}
    secret = app.config["OUTBOUND_WEBHOOK_SECRET"]
    for request in receiver.requests:  # Standard Webhooks: the receiver can verify every one
        assert verify(secret, request["headers"], request["raw"]) == request["headers"]["webhook-id"]
    assert by_path["/slack"]["json"] == {"text": "Red: Acme GmbH"}
    assert by_path["/teams"]["json"]["@type"] == "MessageCard" and by_path["/teams"]["json"]["text"] == "Red: Acme GmbH"
    body = by_path["/json"]["json"]
    assert body["type"] == "triage.playbook_step" and body["data"]["account"]["id"] == "acme"
    assert body["data"]["text"] == "Acme GmbH needs attention"
    # No CRM callback configured: skipped, with a clear result.
    assert steps["crm"].result == {"skipped": True, "reason": "CRM_CALLBACK_URL is not set: nothing written back"}
    assert db.session.get(PlaybookRun, run_id).status == "completed"


def test_crm_writeback_posts_a_signed_callback(db, app, receiver, run_jobs, hooks_catalog):
    make_account(db)
    app.config["CRM_CALLBACK_URL"] = receiver.url + "/crm"
    try:
        run_id = launch_playbook(db, "hooks", params={"url": receiver.url}, playbook=hooks_catalog)
        run_jobs()
    finally:
        app.config["CRM_CALLBACK_URL"] = None
    [crm] = [r for r in receiver.requests if r["path"] == "/crm"]
    assert verify(app.config["OUTBOUND_WEBHOOK_SECRET"], crm["headers"], crm["raw"])
    assert crm["json"]["account"] == {"id": "acme", "triage_status": "hooks"}
    assert crm["json"]["note"] == "Playbook hooks started"
    assert steps_of(db, run_id)["crm"].result["status"] == 200


def test_an_outside_failure_is_retried_and_delivered_once(db, app, receiver, run_jobs, hooks_catalog):
    make_account(db)
    receiver.statuses = [500, 503]  # the first two deliveries fail, whichever step they are
    run_id = launch_playbook(db, "hooks", params={"url": receiver.url}, playbook=hooks_catalog)
    run_jobs()
    steps = steps_of(db, run_id)
    assert all(s.status == "succeeded" for s in steps.values())
    assert sum(s.attempts for s in steps.values()) == len(steps) + 2
    retried = [s for s in steps.values() if s.attempts > 1]
    assert retried and all(s.error is None for s in retried)
    # Same webhook-id on every attempt: three hooks, three distinct accepted messages.
    assert len(receiver.requests) == 5 and len(receiver.accepted) == 3


def test_an_outside_failure_after_all_retries_fails_the_run_with_the_reason(db, app, receiver, run_jobs, hooks_catalog):
    make_account(db)
    receiver.statuses = [500] * 20
    run_id = launch_playbook(db, "hooks", params={"url": receiver.url}, playbook=hooks_catalog)
    run_jobs()
    run = db.session.get(PlaybookRun, run_id)
    assert run.status == "failed" and "answered 500" in run.status_note
    failed = [s for s in run.steps if s.status == "failed"]
    assert failed and all(s.attempts == 4 for s in failed)


def test_watch_list_add_is_once_and_remove_keeps_history(db, app, run_jobs, tmp_path):
    from app import catalog

    playbook = hooks_playbook(
        tmp_path,
        """
        name: watch
        concurrent: true
        steps:
          - name: add
            action: add_to_watch_list
            with: {list: usage-decline, reason: "down 20%"}
          - name: add-again
            action: add_to_watch_list
            with: {list: usage-decline}
          - name: remove
            action: remove_from_watch_list
            with: {list: usage-decline}
    """,
    )
    catalog.current().playbooks["watch"] = playbook
    try:
        make_account(db)
        run_id = launch_playbook(db, "watch", playbook=playbook)
        run_jobs()
    finally:
        catalog.current().playbooks.pop("watch")
    steps = steps_of(db, run_id)
    assert steps["add"].result["already"] is False and steps["add-again"].result["already"] is True
    assert steps["remove"].result["removed"] is True
    [entry] = db.session.execute(select(WatchListEntry)).scalars().all()
    assert entry.reason == "down 20%" and entry.removed_at is not None and entry.run_id == run_id


def test_launch_playbook_starts_the_other_playbook_once(db, app, run_jobs, tmp_path):
    from app import catalog

    playbook = hooks_playbook(
        tmp_path,
        """
        name: launcher
        steps:
          - name: launch
            action: launch_playbook
            with: {playbook: monthly-check-in}
    """,
        also=["monthly-check-in"],
    )
    catalog.current().playbooks["launcher"] = playbook
    try:
        make_account(db)
        run_id = launch_playbook(db, "launcher", playbook=playbook)
        run_jobs()
        from workers.jobs import run_step

        step = steps_of(db, run_id)["launch"]
        step.status = "queued"  # as if the job ran again
        db.session.commit()
        run_step(step.id)
    finally:
        catalog.current().playbooks.pop("launcher")
    runs = db.session.execute(select(PlaybookRun).where(PlaybookRun.playbook == "monthly-check-in")).scalars().all()
    assert len(runs) == 1 and runs[0].context["launched_by"]["run"] == run_id
    assert steps_of(db, run_id)["launch"].result == {"launched": True, "run": runs[0].id}


def test_launch_playbook_names_must_exist(tmp_path):
    from app.filecheck import FileErrors

    (tmp_path / "p.yml").write_text(
        "name: p\nsteps:\n  - name: go\n    action: launch_playbook\n    with: {playbook: monthly-chek-in}\n"
    )
    (tmp_path / "q.yml").write_text("name: monthly-check-in\nsteps:\n  - name: t\n    task: {title: x}\n")
    with pytest.raises(FileErrors) as caught:
        load_playbooks(str(tmp_path))
    assert "p.yml:5:" in str(caught.value) and "did you mean 'monthly-check-in'" in str(caught.value)


def test_business_days_skip_the_weekend():
    friday = datetime(2026, 11, 27, 9, tzinfo=UTC)
    assert add_business_days(friday, 1) == datetime(2026, 11, 30, 9, tzinfo=UTC)  # Monday
    assert add_business_days(friday, 5) == datetime(2026, 12, 4, 9, tzinfo=UTC)
    saturday = datetime(2026, 11, 28, 9, tzinfo=UTC)
    assert add_business_days(saturday, 0) == datetime(2026, 11, 30, 9, tzinfo=UTC)


def test_task_due_in_business_days_and_wait_in_business_days(tmp_path):
    from app.filecheck import FileErrors

    (tmp_path / "p.yml").write_text(
        textwrap.dedent("""
        name: p
        steps:
          - name: t
            task: {title: x, due_in_business_days: 3}
          - name: w
            action: wait
            with: {business_days: 2}
    """)
    )
    loaded = load_playbooks(str(tmp_path))["p"]
    assert loaded.steps[0].task.due_in_business_days == 3 and loaded.steps[1].params == {"business_days": 2}
    (tmp_path / "p.yml").write_text(
        "name: p\nsteps:\n  - name: t\n    task: {title: x, due_in_days: 1, due_in_business_days: 3}\n"
    )
    with pytest.raises(FileErrors) as caught:
        load_playbooks(str(tmp_path))
    assert "both `due_in_days` and `due_in_business_days`" in str(caught.value)


def test_a_step_that_overruns_its_timeout_is_stopped_and_retried(db, app, receiver, run_jobs, tmp_path):
    from app import catalog

    playbook = hooks_playbook(
        tmp_path,
        """
        name: slow
        steps:
          - name: call
            action: webhook
            timeout: 1
            with: {url: "{{ params.url }}/slow"}
    """,
    )
    catalog.current().playbooks["slow"] = playbook
    receiver.delay_first = 4  # the first answer comes too late: the job is stopped after 1 s
    try:
        make_account(db)
        run_id = launch_playbook(db, "slow", params={"url": receiver.url}, playbook=playbook)
        run_jobs()
    finally:
        catalog.current().playbooks.pop("slow")
    step = steps_of(db, run_id)["call"]
    assert (step.status, step.attempts) == ("succeeded", 2)
    assert len(receiver.requests) == 2
