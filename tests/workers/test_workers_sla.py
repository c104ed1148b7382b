"""Task SLAs by the periodic job: overdue flag, reminder, `task.overdue` event, escalation, snooze wake-up."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.models import AuditEntry, Event, MailLog, Task, User
from app.models.types import utcnow
from app.playbooks.tasks import snooze_task
from tests.helpers import launch_playbook, make_account
from workers.maintenance import check_gdpr_deadlines, check_tasks
from workers.periodic import PERIODIC


def test_periodic_jobs_are_declared_as_data():
    names = {job["name"] for job in PERIODIC}
    assert {"sweep", "recover-lost-steps", "task-sla", "gdpr-deadlines"} <= names
    assert all(callable(job["func"]) and job["interval"] > 0 for job in PERIODIC)


def test_an_overdue_task_is_flagged_reminded_then_escalated_to_the_manager(db, app, smtp_inbox, run_jobs):
    make_account(db)
    user = User(email="ana@vendor.example", role="csm", manager_email="lead@vendor.example")
    user.set_password("x")
    db.session.add(user)
    db.session.commit()
    launch_playbook(db, "monthly-check-in")
    task = db.session.execute(select(Task)).scalar_one()
    task.due_at = utcnow() - timedelta(hours=1)
    db.session.commit()

    assert check_tasks() == {"woken": 0, "overdue": 1, "escalated": 0}
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.overdue_at is not None and task.reminded_at is not None and task.escalated_at is None
    [reminder] = smtp_inbox.to("ana@vendor.example")
    assert "Overdue: Monthly check-in with Acme GmbH" in reminder
    # The internal event rules can match, stored once through the intake.
    [event] = db.session.execute(select(Event).where(Event.type == "task.overdue")).scalars().all()
    assert (event.source, event.external_id) == ("triage", f"task-overdue-{task.id}")
    assert event.payload["properties"] == {
        "task_id": task.id,
        "run_id": task.run_id,
        "playbook": "monthly-check-in",
        "priority": "normal",
        "assignee": "ana@vendor.example",
    }
    # A second pass before the delay: nothing new.
    assert check_tasks() == {"woken": 0, "overdue": 0, "escalated": 0}
    assert len(smtp_inbox.to("ana@vendor.example")) == 1

    later = utcnow() + timedelta(hours=app.config["TASK_ESCALATION_DELAY_HOURS"], minutes=1)
    assert check_tasks(now=later.isoformat())["escalated"] == 1
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.escalated_to == "lead@vendor.example"  # the assignee's manager, from the users table
    [escalation] = smtp_inbox.to("lead@vendor.example")
    assert "Escalated: Monthly check-in with Acme GmbH" in escalation
    assert check_tasks(now=later.isoformat())["escalated"] == 0
    actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.object_id == str(task.id))).scalars().all()
    assert {"task.overdue", "task.escalated"} <= set(actions)
    assert db.session.scalar(select(MailLog.id).where(MailLog.to == "lead@vendor.example"))


def test_without_a_users_row_escalation_goes_to_the_accounts_manager(db, app):
    make_account(db)
    launch_playbook(db, "monthly-check-in")
    task = db.session.execute(select(Task)).scalar_one()
    task.due_at = utcnow() - timedelta(days=5)
    db.session.commit()
    check_tasks()
    check_tasks(now=(utcnow() + timedelta(hours=app.config["TASK_ESCALATION_DELAY_HOURS"] + 1)).isoformat())
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.escalated_to == "mo@vendor.example"
    assert db.session.execute(select(MailLog.status).where(MailLog.to == "mo@vendor.example")).scalar_one() == "logged"


def test_a_snoozed_task_wakes_when_its_time_comes_and_is_not_overdue_while_snoozed(db):
    make_account(db)
    launch_playbook(db, "monthly-check-in")
    task = db.session.execute(select(Task)).scalar_one()
    task.due_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    snooze_task(task.id, utcnow() + timedelta(days=1), "back next week", "ana@vendor.example")
    assert check_tasks() == {"woken": 0, "overdue": 0, "escalated": 0}
    result = check_tasks(now=(utcnow() + timedelta(days=1, minutes=1)).isoformat())
    assert result["woken"] == 1 and result["overdue"] == 1
    db.session.expire_all()
    assert db.session.get(Task, task.id).status == "open"


def test_gdpr_deadline_warnings_come_once(db):
    from app.models import PlaybookRun

    make_account(db)
    run_id = launch_playbook(db, "monthly-check-in")
    run = db.session.get(PlaybookRun, run_id)
    run.deadline_at = utcnow() + timedelta(days=3)
    db.session.commit()
    assert check_gdpr_deadlines() == {"warned": [run_id]}
    assert check_gdpr_deadlines() == {"warned": []}
    assert check_gdpr_deadlines(now=(utcnow() + timedelta(days=4)).isoformat()) == {"warned": [run_id]}
    actions = db.session.execute(select(AuditEntry.action).where(AuditEntry.object_type == "run")).scalars().all()
    assert sorted(actions) == ["gdpr.deadline_missed", "gdpr.deadline_near"]


def test_the_scheduler_process_enqueues_the_periodic_jobs(db, test_env):
    """`python -m workers.scheduler` (RQ's CronScheduler) puts every periodic job on the maintenance queue."""
    import subprocess
    import sys
    import time

    from app.jobs import MAINTENANCE, queue
    from app.redis_conn import get_redis
    from tests.helpers import ROOT

    process = subprocess.Popen(
        [sys.executable, "-m", "workers.scheduler"],
        cwd=ROOT,
        env=test_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        q = queue(MAINTENANCE)
        wanted = {job["func"].__name__ for job in PERIODIC}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = {job.func_name.rsplit(".", 1)[-1] for job in q.get_jobs()}
            if wanted <= names:
                break
            time.sleep(0.2)
        assert wanted <= names
    finally:
        process.terminate()
        process.wait(timeout=10)
        get_redis().delete("triage:scheduler:lock")
