"""GDPR off-boarding, three action types run by the black playbook after the save attempt is lost:

- gdpr_export: the account's personal data to a JSON file (GDPR_EXPORT_DIR) for the record;
  starts the one-month clock (the run's `deadline_at`).
- gdpr_offboard: erase the contacts' personal data everywhere the server keeps it: the
  contact rows, stored event payloads, health reasons, task texts, notes, comments and
  snooze reasons, watch-list reasons, run contexts, the mail log and the audit entries about
  the account and its tasks. What remains is an ErasureRecord with counts per category: no
  names, no addresses, and an `account.offboarded` audit entry with those counts. The
  playbook runs it only after a manager approved (four eyes).
- gdpr_notify_processors: a signed webhook to every processor in GDPR_PROCESSOR_WEBHOOKS,
  carrying the account id, the categories and the time: no personal data.
"""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import String, and_, cast, or_, select

from app import audit
from app.extensions import db
from app.models import AuditEntry, ErasureRecord, Event, HealthChange, MailLog, PlaybookRun, Task
from app.models.comment import TaskComment
from app.models.types import utcnow
from app.models.watchlist import WatchListEntry
from app.playbooks.actions.context import ActionContext
from app.playbooks.actions.registry import action
from app.playbooks.outbound import post_signed

PARAMS = {"type": "object", "additionalProperties": False, "properties": {}}
ERASED = "[erased]"


@action("gdpr_offboard", PARAMS)
def gdpr_offboard(ctx: ActionContext) -> dict[str, Any]:
    """Erase the account's contacts' personal data and keep an anonymous record."""
    record = db.session.execute(select(ErasureRecord).where(ErasureRecord.run_id == ctx.run.id)).scalar_one_or_none()
    if record is None:
        record = erase_account_personal_data(ctx.account, run_id=ctx.run.id)
    deadline = ctx.run.deadline_at
    return {
        "erasure_record": record.id,
        "counts": record.counts,
        "categories": sorted(record.counts),
        "erased_at": record.erased_at.isoformat(),
        "run": ctx.run.id,
        "deadline": deadline.isoformat() if deadline else None,
        "within_deadline": deadline is None or record.erased_at <= deadline,
    }


@action("gdpr_export", PARAMS)
def gdpr_export(ctx: ActionContext) -> dict[str, Any]:
    """Write the account's personal data to a file for the record; start the one-month clock."""
    if ctx.run.deadline_at is None:
        ctx.run.deadline_at = utcnow() + timedelta(days=current_app.config["GDPR_DEADLINE_DAYS"])
    for step in ctx.run.steps:  # the deadline shows on the erasure steps (admin, API `due_at`)
        if step.action in ("gdpr_offboard", "gdpr_notify_processors"):
            step.due_at = ctx.run.deadline_at
    folder = Path(current_app.config["GDPR_EXPORT_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    safe_id = re.sub(r"[^A-Za-z0-9_.-]", "_", ctx.account.id)
    path = folder / f"{safe_id}-run{ctx.run.id}.json"
    data = export_account_personal_data(ctx.account)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)  # all or nothing: a retried export rewrites the same file
    return {
        "file": str(path),
        "items": {key: len(value) for key, value in data.items() if isinstance(value, list)},
        "deadline": ctx.run.deadline_at.isoformat(),
    }


@action("gdpr_notify_processors", PARAMS, external=True, timeout=120)
def gdpr_notify_processors(ctx: ActionContext) -> dict[str, Any]:
    """Tell every configured processor (GDPR_PROCESSOR_WEBHOOKS) that the account's data was erased."""
    urls = current_app.config.get("GDPR_PROCESSOR_WEBHOOKS") or []
    if not urls:
        return {"notified": 0, "reason": "GDPR_PROCESSOR_WEBHOOKS is not set: no processors to notify"}
    record = db.session.execute(
        select(ErasureRecord)
        .where(ErasureRecord.account_id == ctx.account.id)
        .order_by(ErasureRecord.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    body = {
        "type": "account.personal_data_erased",
        "account_id": ctx.account.id,
        "erased_at": record.erased_at.isoformat() if record else None,
        "categories": sorted(record.counts) if record else [],
        "erasure_record": record.id if record else None,
    }
    for index, url in enumerate(urls):
        # The same id on every attempt: a processor that already has it de-duplicates.
        post_signed(url, body, msg_id=f"triage-erasure-{ctx.run.id}-{index}")
    return {"notified": len(urls)}


def export_account_personal_data(account) -> dict:
    tasks = db.session.execute(select(Task).where(Task.account_id == account.id).order_by(Task.id)).scalars().all()
    return {
        "account": {"id": account.id, "name": account.name, "exported_at": utcnow().isoformat()},
        "contacts": [{"name": c.name, "email": c.email, "role": c.role} for c in account.contacts],
        "events": [
            {"id": e.external_id, "type": e.type, "occurred_at": e.occurred_at, "payload": e.payload}
            for e in db.session.execute(select(Event).where(Event.account_id == account.id)).scalars()
        ],
        "health_changes": [
            {"status": h.status, "at": h.at, "reason": h.reason}
            for h in db.session.execute(select(HealthChange).where(HealthChange.account_id == account.id)).scalars()
        ],
        "tasks": [
            {
                "title": t.title,
                "instructions": t.instructions,
                "note": t.note,
                "comments": [{"author": c.author, "text": c.text, "at": c.created_at} for c in t.comments],
            }
            for t in tasks
        ],
        "mail_log": [
            {"to": m.to, "subject": m.subject, "body": m.body, "at": m.created_at}
            for m in db.session.execute(select(MailLog).where(MailLog.account_id == account.id)).scalars()
        ],
    }


def erase_account_personal_data(account, run_id: int | None = None) -> ErasureRecord:
    secrets = sorted(
        {value for contact in account.contacts for value in (contact.name, contact.email) if value},
        key=len,
        reverse=True,
    )
    scrub = Scrubber(secrets)
    counts = {"contacts": len(account.contacts)}
    account.contacts = []

    counts["event_payloads"] = 0
    for event in db.session.execute(select(Event).where(Event.account_id == account.id)).scalars():
        cleaned = scrub.json(strip_contacts(event.payload))
        if cleaned != event.payload:
            event.payload = cleaned
            counts["event_payloads"] += 1

    counts["health_reasons"] = _scrub_columns(scrub, HealthChange, HealthChange.account_id == account.id, "reason")
    if scrub.text(account.health_reason) != account.health_reason:
        account.health_reason = scrub.text(account.health_reason)
        counts["health_reasons"] += 1
    counts["task_texts"] = _scrub_columns(
        scrub, Task, Task.account_id == account.id, "title", "instructions", "note", "snooze_reason"
    )
    task_ids = select(Task.id).where(Task.account_id == account.id)
    counts["task_comments"] = _scrub_columns(scrub, TaskComment, TaskComment.task_id.in_(task_ids), "text")
    counts["watch_list_reasons"] = _scrub_columns(
        scrub, WatchListEntry, WatchListEntry.account_id == account.id, "reason"
    )
    counts["mail_log"] = 0
    for mail in db.session.execute(select(MailLog).where(MailLog.account_id == account.id)).scalars():
        mail.to, mail.body, mail.subject = ERASED, ERASED, scrub.text(mail.subject)
        counts["mail_log"] += 1
    counts["run_contexts"] = 0
    for run in db.session.execute(select(PlaybookRun).where(PlaybookRun.account_id == account.id)).scalars():
        cleaned = scrub.json(run.context)
        if cleaned != run.context:
            run.context = cleaned
            counts["run_contexts"] += 1

    counts["audit_entries"] = 0
    about_account = or_(
        and_(AuditEntry.object_type == "account", AuditEntry.object_id == account.id),
        and_(
            AuditEntry.object_type == "task",
            AuditEntry.object_id.in_(select(cast(Task.id, String)).where(Task.account_id == account.id)),
        ),
    )
    for entry in db.session.execute(select(AuditEntry).where(about_account)).scalars():
        summary, details = scrub.text(entry.summary), scrub.json(entry.details)
        if (summary, details) != (entry.summary, entry.details):
            entry.summary, entry.details = summary, details
            counts["audit_entries"] += 1

    account.erased_at = utcnow()
    record = ErasureRecord(account_id=account.id, run_id=run_id, counts=counts)
    db.session.add(record)
    db.session.flush()
    audit.record(
        "system",
        "account.offboarded",
        "account",
        account.id,
        summary=f"GDPR erasure: {sum(counts.values())} item(s) erased",
        details={"counts": counts, "run": run_id},
    )
    return record


def strip_contacts(payload: Any) -> Any:
    """A stored payload (JSON) without its account's contacts."""
    if isinstance(payload, dict) and isinstance(payload.get("account"), dict) and "contacts" in payload["account"]:
        return {**payload, "account": {k: v for k, v in payload["account"].items() if k != "contacts"}}
    return payload


def _scrub_columns(scrub, model, where, *columns) -> int:
    changed = 0
    for row in db.session.execute(select(model).where(where)).scalars():
        for column in columns:
            value = getattr(row, column)
            cleaned = scrub.text(value)
            if cleaned != value:
                setattr(row, column, cleaned)
                changed += 1
    return changed


class Scrubber:
    """Replaces every known personal value (names, e-mail addresses), case-insensitively."""

    def __init__(self, values: list[str]):
        self.pattern = re.compile("|".join(re.escape(v) for v in values), re.IGNORECASE) if values else None

    def text(self, value: Any) -> Any:
        if not value or self.pattern is None or not isinstance(value, str):
            return value
        return self.pattern.sub(ERASED, value)

    def json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.json(item) for item in value]
        return value
