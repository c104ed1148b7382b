"""GDPR off-boarding (the black playbook): export, four-eyes approval, erasure, processors, evidence."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from app.intake.signatures import verify
from app.models import Account, AuditEntry, Contact, ErasureRecord, Event, MailLog, PlaybookRun, Task
from app.models.comment import TaskComment
from app.playbooks.tasks import comment_task, complete_task
from tests.helpers import health_webhook, steps_of


def black_and_lost(db, post_webhook, run_jobs):
    payload = health_webhook(to="black", health={"to": "black", "reason": "Jane Roe (jane@acme.example) said no"})
    payload["account"]["renewal_date"] = "2026-01-31"  # the subscription has ended
    post_webhook(payload)
    run_jobs()
    save = db.session.execute(select(Task).where(Task.account_id == "acme")).scalar_one()
    comment_task(save.id, "Jane Roe will not extend, said jane@acme.example", "ana@vendor.example")
    complete_task(save.id, "lost", "Jane Roe decided", "ana@vendor.example")
    run_jobs()
    return save.run_id


def test_lost_exports_then_waits_for_a_managers_approval(db, app, post_webhook, run_jobs):
    run_id = black_and_lost(db, post_webhook, run_jobs)
    steps = steps_of(db, run_id)
    assert steps["export-personal-data"].status == "succeeded"
    export = Path(steps["export-personal-data"].result["file"])
    data = json.loads(export.read_text())
    assert [c["email"] for c in data["contacts"]] == ["jane@acme.example"]
    assert data["tasks"][0]["comments"][0]["text"].startswith("Jane Roe")
    # Four eyes: nothing is erased before the manager approves.
    approval = db.session.execute(select(Task).where(Task.step_id == steps["approve-erasure"].id)).scalar_one()
    assert (approval.assignee, approval.outcomes, approval.priority) == (
        "mo@vendor.example",
        ["approve", "reject"],
        "urgent",
    )
    assert db.session.scalar(select(Contact.id)) is not None
    run = db.session.get(PlaybookRun, run_id)
    assert run.status == "waiting" and run.deadline_at is not None
    assert 29 <= (run.deadline_at - steps["export-personal-data"].started_at).days <= 30
    assert steps["offboard"].due_at == run.deadline_at == steps["notify-processors"].due_at


def test_rejected_erasure_erases_nothing(db, app, post_webhook, run_jobs):
    run_id = black_and_lost(db, post_webhook, run_jobs)
    approval = db.session.execute(
        select(Task).where(Task.outcomes.is_not(None), Task.title.like("Approve%"))
    ).scalar_one()
    complete_task(approval.id, "reject", "legal hold: open invoice dispute", "mo@vendor.example")
    run_jobs()
    steps = steps_of(db, run_id)
    assert steps["offboard"].status == "skipped" and steps["notify-processors"].status == "skipped"
    assert db.session.scalar(select(ErasureRecord.id)) is None
    assert db.session.get(PlaybookRun, run_id).status == "completed"


def test_approved_erasure_leaves_an_evidence_record_without_personal_data(
    db, app, post_webhook, run_jobs, receiver, auth, client
):
    app.config["GDPR_PROCESSOR_WEBHOOKS"] = [receiver.url + "/processor-a", receiver.url + "/processor-b"]
    receiver.statuses = [502]  # the first processor call fails once: retried
    try:
        run_id = black_and_lost(db, post_webhook, run_jobs)
        approval = db.session.execute(select(Task).where(Task.title.like("Approve%"))).scalar_one()
        complete_task(approval.id, "approve", None, "mo@vendor.example")
        run_jobs()
    finally:
        app.config["GDPR_PROCESSOR_WEBHOOKS"] = []
    db.session.expire_all()
    run = db.session.get(PlaybookRun, run_id)
    steps = steps_of(db, run_id)
    assert run.status == "completed", [(s.name, s.status, s.error) for s in run.steps]
    record = db.session.execute(select(ErasureRecord)).scalar_one()
    assert record.run_id == run_id and record.counts["contacts"] == 1 and record.counts["task_comments"] == 1
    evidence = steps["offboard"].result
    assert evidence["within_deadline"] is True and evidence["deadline"] == run.deadline_at.isoformat()
    assert set(evidence["categories"]) >= {"contacts", "event_payloads", "task_texts", "task_comments", "mail_log"}
    # The evidence (record and step result) holds no personal data.
    text = json.dumps([record.counts, evidence, record.account_id]).lower()
    assert "jane" not in text and "roe" not in text and "acme.example" not in text
    # Every processor told, signed, with no personal data; the failed delivery was retried.
    processors = [r for r in receiver.requests if r["path"].startswith("/processor")]
    assert len(processors) == 3 and sorted(receiver.accepted) == [
        f"triage-erasure-{run_id}-0",
        f"triage-erasure-{run_id}-1",
    ]
    for request in processors:
        assert verify(app.config["OUTBOUND_WEBHOOK_SECRET"], request["headers"], request["raw"])
        assert request["json"]["type"] == "account.personal_data_erased" and b"jane" not in request["raw"].lower()
    assert steps["notify-processors"].result == {"notified": 2}
    # Nothing the server keeps still names her (comments included).
    dump = json.dumps(
        [
            [e.payload for e in db.session.execute(select(Event)).scalars()],
            [(t.title, t.instructions, t.note) for t in db.session.execute(select(Task)).scalars()],
            [c.text for c in db.session.execute(select(TaskComment)).scalars()],
            [(m.to, m.body) for m in db.session.execute(select(MailLog)).scalars()],
            [(a.summary, a.details) for a in db.session.execute(select(AuditEntry)).scalars()],
            db.session.get(Account, "acme").health_reason,
        ]
    ).lower()
    assert "jane" not in dump and "roe" not in dump
    # The audit log keeps who did what, and the off-boarding itself, without her name.
    actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert {"task.commented", "task.completed"} <= set(actions) and actions[-1] == "account.offboarded"
    offboarded = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "account.offboarded")).one()
    assert offboarded.object_id == "acme" and offboarded.details["counts"]["audit_entries"] >= 1
    response = client.get("/api/v1/accounts/acme/runs", headers=auth)
    assert response.status_code == 200 and "jane" not in response.get_data(as_text=True).lower()
