"""Read-only records for CS ops: the events received and the playbook runs they caused."""

from __future__ import annotations

import json

from flask import render_template, url_for
from flask_admin.contrib.sqla.filters import FilterEqual, FilterLike
from markupsafe import Markup
from sqlalchemy import select

from app.admin import formatting as fmt
from app.admin.access import EVERYTHING
from app.admin.views import AdminModelView
from app.extensions import db
from app.models import Event, PlaybookRun, Task
from app.models.run import RUN_STATUSES


def _account_link(view, context, model, name):
    return Markup('<a href="{}">{}</a>').format(url_for("account.page", account_id=model.account_id), model.account_id)


def _json(view, context, model, name):
    return Markup("<pre class='mb-0'>{}</pre>").format(
        json.dumps(getattr(model, name), indent=2, sort_keys=True, default=str)
    )


def _steps(view, context, run, name):
    step_tasks = dict(
        db.session.execute(select(Task.step_id, Task.id).where(Task.run_id == run.id, Task.step_id.is_not(None))).all()
    )
    return Markup(
        render_template(
            "triage_admin/_steps.html",
            steps=run.steps,
            step_tasks=step_tasks,
            may_open_task=set(step_tasks.values()),
            fmt=fmt,
        )
    )


def _times(*names):
    return {name: (lambda v, c, model, n: fmt.when(getattr(model, n))) for name in names}


class EventView(AdminModelView):
    roles = EVERYTHING
    can_view_details = True
    column_list = ("id", "type", "source", "account_id", "occurred_at", "received_at", "processed_at", "error")
    column_details_list = (
        "id",
        "type",
        "source",
        "external_id",
        "account_id",
        "occurred_at",
        "received_at",
        "processed_at",
        "error",
        "payload",
    )
    column_labels = {"account_id": "Account", "external_id": "Idempotency key"}
    column_default_sort = ("id", True)
    column_searchable_list = ("external_id", "account_id", "type")
    column_filters = (
        FilterEqual(Event.type, "Type"),
        FilterLike(Event.type, "Type"),
        FilterEqual(Event.source, "Source"),
        FilterEqual(Event.account_id, "Account id"),
        FilterLike(Event.error, "Error"),
    )
    column_formatters = {"account_id": _account_link, **_times("occurred_at", "received_at", "processed_at")}
    column_formatters_detail = {**column_formatters, "payload": _json}


class PlaybookRunView(AdminModelView):
    roles = EVERYTHING
    can_view_details = True
    column_list = ("id", "playbook", "account_id", "rule", "status", "triggered_at", "started_at", "finished_at")
    column_details_list = (
        "id",
        "playbook",
        "playbook_version",
        "account_id",
        "rule",
        "trigger_event_id",
        "triggered_at",
        "status",
        "status_note",
        "started_at",
        "finished_at",
        "steps",
        "context",
    )
    column_labels = {"account_id": "Account", "trigger_event_id": "Trigger event"}
    column_default_sort = ("id", True)
    column_searchable_list = ("playbook", "account_id", "rule")
    column_filters = (
        FilterEqual(PlaybookRun.status, "Status", options=[(s, s) for s in RUN_STATUSES]),
        FilterEqual(PlaybookRun.playbook, "Playbook"),
        FilterEqual(PlaybookRun.rule, "Rule"),
        FilterEqual(PlaybookRun.account_id, "Account id"),
    )
    column_formatters = {
        "account_id": _account_link,
        "status": lambda v, c, run, n: fmt.badge(run.status),
        **_times("triggered_at", "started_at", "finished_at"),
    }
    column_formatters_detail = {
        **column_formatters,
        "steps": _steps,
        "context": _json,
        "trigger_event_id": lambda v, c, run, n: (
            Markup('<a href="{}">{}</a>').format(
                url_for("event.details_view", id=run.trigger_event_id), run.trigger_event_id
            )
            if run.trigger_event_id
            else fmt.text(None)
        ),
    }
