"""gdpr_offboard: erase the contacts' personal data everywhere, keep an anonymous record.

Everywhere the server keeps it: the contact rows, stored event payloads, health
reasons, task texts and notes, run contexts and the mail log. What remains is an
ErasureRecord with counts per category: no names, no addresses.
"""
from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.models import ErasureRecord, Event, HealthChange, MailLog, PlaybookRun, Task
from app.models.types import utcnow
from app.playbooks.actions.registry import action

PARAMS = {"type": "object", "additionalProperties": False, "properties": {}}
ERASED = "[erased]"


@action("gdpr_offboard", PARAMS)
def gdpr_offboard(ctx):
    """Erase the account's contacts' personal data and keep an anonymous record."""
    done = db.session.execute(select(ErasureRecord).where(ErasureRecord.run_id == ctx.run.id)).scalar_one_or_none()
    if done is not None:
        return {"erasure_record": done.id, "counts": done.counts}
    record = erase_account_personal_data(ctx.account, run_id=ctx.run.id)
    return {"erasure_record": record.id, "counts": record.counts}


def erase_account_personal_data(account, run_id: int | None = None) -> ErasureRecord:
    secrets = sorted({value for contact in account.contacts for value in (contact.name, contact.email) if value},
                     key=len, reverse=True)
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
    counts["task_texts"] = _scrub_columns(scrub, Task, Task.account_id == account.id, "title", "instructions", "note")
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

    account.erased_at = utcnow()
    record = ErasureRecord(account_id=account.id, run_id=run_id, counts=counts)
    db.session.add(record)
    db.session.flush()
    return record


def strip_contacts(payload):
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

    def text(self, value):
        if not value or self.pattern is None or not isinstance(value, str):
            return value
        return self.pattern.sub(ERASED, value)

    def json(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.json(item) for item in value]
        return value
