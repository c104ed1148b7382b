"""The audit log: who changed what (task outcomes, reassignments, rule toggles, off-boardings),
newest first. Read-only, for managers (about their team's tasks, runs and accounts, and rule
switches) and for CS ops and admins (everything)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import url_for
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual, FilterLike
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import Query

from app.admin import formatting as fmt
from app.admin.access import OPERATORS, scope_audit_for
from app.admin.views import AdminModelView
from app.models import AuditEntry


class SinceFilter(BaseSQLAFilter):
    """Entries of the last day / week / month (aware UTC times: the column refuses naive ones)."""

    CHOICES = (("1", "last 24 hours"), ("7", "last 7 days"), ("30", "last 30 days"), ("90", "last 90 days"))

    def __init__(self) -> None:
        super().__init__(AuditEntry.at, "When", options=self.CHOICES)

    def validate(self, value) -> bool:
        return value in dict(self.CHOICES)

    def apply(self, query: Query[Any], value: str, alias: Any = None) -> Query[Any]:
        return query.filter(AuditEntry.at >= datetime.now(UTC) - timedelta(days=int(value)))

    def operation(self) -> str:
        return "in"


def _object(view, context, entry, name):
    if entry.object_type == "task" and entry.object_id.isdigit():
        return Markup('<a href="{}">task {}</a>').format(
            url_for("task.page", task_id=int(entry.object_id)), entry.object_id
        )
    if entry.object_type == "account":
        return Markup('<a href="{}">account {}</a>').format(
            url_for("account.page", account_id=entry.object_id), entry.object_id
        )
    return Markup("{} {}").format(entry.object_type, entry.object_id)


def _details(view, context, entry, name):
    if not entry.details:
        return fmt.text(None)
    return Markup('<details><summary class="small">details</summary><pre class="mb-0 small">{}</pre></details>').format(
        json.dumps(entry.details, indent=2, sort_keys=True, default=str)
    )


class AuditView(AdminModelView):
    roles = OPERATORS
    column_display_actions = False
    column_list = ("at", "actor", "action", "object_id", "summary", "details")
    column_labels = {"at": "When", "object_id": "Object"}
    column_default_sort = ("at", True)  # the index on `at`, read backwards
    column_sortable_list = ("at", "actor", "action")
    column_searchable_list = ("summary", "object_id", "actor")
    column_filters = (
        SinceFilter(),
        FilterEqual(AuditEntry.actor, "Actor"),
        FilterLike(AuditEntry.actor, "Actor"),
        FilterEqual(AuditEntry.action, "Action"),
        FilterLike(AuditEntry.action, "Action"),
        FilterEqual(AuditEntry.object_type, "Object type"),
        FilterEqual(AuditEntry.object_id, "Object id"),
    )
    column_formatters = {
        "at": lambda v, c, entry, n: fmt.when(entry.at),
        "object_id": _object,
        "summary": lambda v, c, entry, n: fmt.text(entry.summary),
        "details": _details,
    }

    def get_query(self) -> Query[Any]:
        return scope_audit_for(current_user, super().get_query())

    def get_count_query(self) -> Query[Any]:
        return scope_audit_for(current_user, super().get_count_query())
