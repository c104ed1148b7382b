"""Writing the audit log. Call `record(...)` in the same transaction as the change itself,
so the log and the change commit (or roll back) together."""

from __future__ import annotations

from app.extensions import db
from app.models.audit import AuditEntry


def record(
    actor: str, action: str, object_type: str, object_id, summary: str | None = None, details: dict | None = None
) -> AuditEntry:
    entry = AuditEntry(
        actor=actor or "system",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary,
        details=details,
    )
    db.session.add(entry)
    return entry
