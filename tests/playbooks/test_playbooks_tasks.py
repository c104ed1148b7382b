"""Task services (snooze, reassign, comment, complete) and run lifecycle, through the real pipeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.models import AuditEntry, PlaybookRun, Task
from app.models.comment import TaskComment
from app.models.types import utcnow
from app.playbooks.lifecycle import cancel_run
from app.playbooks.tasks import TaskError, comment_task, complete_task, reassign_task, snooze_task
from tests.helpers import health_webhook, launch_playbook, make_account, steps_of


def audits(db, action):
    return db.session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars().all()


def one_task(db, account_id="acme"):
    return db.session.execute(select(Task).where(Task.account_id == account_id).order_by(Task.id)).scalars().first()


def test_snooze_reassign_comment_complete_are_audited(db, run_jobs):
    make_account(db)
    run_id = launch_playbook(db, "monthly-check-in")
    task = one_task(db)
    assert task.due_at is not None and task.assignee == "ana@vendor.example"
    until = utcnow() + timedelta(days=3)
    snooze_task(task.id, until, "customer on holiday", "ana@vendor.example")
    assert (task.status, task.snooze_reason) == ("snoozed", "customer on holiday")
    reassign_task(task.id, "Bo@Vendor.example", "mo@vendor.example")
    assert task.assignee == "bo@vendor.example" and steps_of(db, run_id)["check-in"].assignee == "bo@vendor.example"
    comment = comment_task(task.id, "Called, voicemail.", "bo@vendor.example")
    complete_task(task.id, "no_answer", "will try again", "bo@vendor.example")
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert (task.status, task.outcome, task.snoozed_until) == ("done", "no_answer", None)
    assert [c.text for c in task.comments] == ["Called, voicemail."] and comment.author == "bo@vendor.example"
    assert db.session.get(PlaybookRun, run_id).status == "completed"
    for action in ("task.snoozed", "task.reassigned", "task.commented", "task.completed"):
        [entry] = audits(db, action)
        assert entry.object_id == str(task.id)
    assert audits(db, "task.reassigned")[0].details["from"] == "ana@vendor.example"


def test_task_services_refuse_what_makes_no_sense(db):
    make_account(db)
    launch_playbook(db, "monthly-check-in")
    task = one_task(db)
    with pytest.raises(TaskError) as caught:
        snooze_task(task.id, utcnow() - timedelta(hours=1), "late", "ana@vendor.example")
    assert caught.value.status == 400
    with pytest.raises(TaskError) as caught:
        snooze_task(task.id, utcnow() + timedelta(hours=1), " ", "ana@vendor.example")
    assert caught.value.status == 400
    with pytest.raises(TaskError) as caught:
        reassign_task(task.id, "not-an-address", "ana@vendor.example")
    assert caught.value.status == 400
    with pytest.raises(TaskError) as caught:
        comment_task(999999, "hello", "ana@vendor.example")
    assert caught.value.status == 404
    complete_task(task.id, "done", None, "ana@vendor.example")
    with pytest.raises(TaskError) as caught:
        snooze_task(task.id, utcnow() + timedelta(hours=1), "x", "ana@vendor.example")
    assert caught.value.status == 409
    assert db.session.scalar(select(TaskComment.id)) is None


def test_a_snoozed_task_wakes_early_when_the_account_gets_worse(db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="yellow", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    task = one_task(db)
    snooze_task(task.id, utcnow() + timedelta(days=14), "they are at a trade fair", "ana@vendor.example")
    post_webhook(health_webhook(to="red", occurred_at="2026-11-02T10:00:00Z"))
    run_jobs()
    db.session.expire_all()
    task = db.session.get(Task, task.id)
    assert task.status == "open" and task.snoozed_until is None
    [woken] = audits(db, "task.woken")
    assert "from yellow to red" in woken.summary


def test_a_snoozed_task_stays_snoozed_when_the_account_gets_better(db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="red", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    task = one_task(db)
    snooze_task(task.id, utcnow() + timedelta(days=2), "waiting for the fix", "ana@vendor.example")
    post_webhook(health_webhook(to="yellow", occurred_at="2026-11-02T10:00:00Z"))
    run_jobs()
    db.session.expire_all()
    assert db.session.get(Task, task.id).status == "snoozed"


def test_the_red_action_plan_closes_itself_when_the_account_is_green_again(db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="red", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    red = db.session.execute(select(PlaybookRun).where(PlaybookRun.playbook == "red-action-plan")).scalar_one()
    post_webhook(health_webhook(to="green", occurred_at="2026-11-05T10:00:00Z"))
    run_jobs()
    db.session.expire_all()
    red = db.session.get(PlaybookRun, red.id)
    assert red.status == "cancelled" and "green again" in red.status_note
    tasks = db.session.execute(select(Task).where(Task.run_id == red.id)).scalars().all()
    assert {t.status for t in tasks} == {"cancelled"}
    assert audits(db, "run.closed")[0].object_id == str(red.id)


def test_the_black_save_attempt_closes_when_the_account_is_yellow(db, post_webhook, run_jobs):
    post_webhook(health_webhook(to="black", occurred_at="2026-11-01T10:00:00Z"))
    run_jobs()
    post_webhook(health_webhook(to="yellow", occurred_at="2026-11-03T10:00:00Z"))
    run_jobs()
    black = db.session.execute(select(PlaybookRun).where(PlaybookRun.playbook == "black-save-attempt")).scalar_one()
    assert black.status == "cancelled" and "no off-boarding" in black.status_note


def test_a_cancelled_run_stops_its_tasks_and_its_waiting_steps(db, post_webhook, run_jobs):
    payload = health_webhook(to="black")
    payload["account"]["renewal_date"] = "2099-12-31"
    post_webhook(payload)
    run_jobs()
    task = one_task(db)
    complete_task(task.id, "lost", None, "ana@vendor.example")
    run_jobs()
    run = cancel_run(task.run_id, "mo@vendor.example", "customer signed again after all")
    assert run.status == "cancelled" and run.cancelled_by == "mo@vendor.example"
    steps = steps_of(db, task.run_id)
    assert steps["wait-for-subscription-end"].status == "skipped"
    assert steps["offboard"].status == "skipped"
    # The scheduled wake-up job, when it comes, finds the run cancelled.
    from workers.jobs import run_step

    assert run_step(steps["wait-for-subscription-end"].id).startswith("nothing to do")
    [entry] = audits(db, "run.cancelled")
    assert entry.summary.endswith("customer signed again after all")
    with pytest.raises(TaskError) as caught:
        cancel_run(task.run_id, "mo@vendor.example")
    assert caught.value.status == 409
