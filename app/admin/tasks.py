"""Tasks: the CSM's work list (the admin's landing page) and the page of one task."""
from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual, FilterLike
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from wtforms import SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.admin import formatting as fmt
from app.admin.access import EVERYTHING, assignee_check, may_see_task, scope_tasks
from app.admin.views import AdminModelView
from app.extensions import db
from app.models import PRIORITIES, Event, PlaybookRun, Task


class TaskStatusFilter(BaseSQLAFilter):
    """Status, with "open or snoozed" (the default when no status is chosen) and "any"."""

    CHOICES = (("active", "open or snoozed"), ("open", "open"), ("snoozed", "snoozed"),
               ("done", "done"), ("cancelled", "cancelled"), ("any", "any status"))

    def __init__(self):
        super().__init__(Task.status, "Status", options=self.CHOICES)

    def validate(self, value) -> bool:
        return value in dict(self.CHOICES)

    def apply(self, query, value, alias=None):
        if value == "active":
            return query.filter(Task.status.in_(fmt.OPEN_TASK))
        if value == "any":
            return query
        return query.filter(Task.status == value)

    def operation(self) -> str:
        return "equals"


class CompleteForm(FlaskForm):
    outcome = SelectField("Outcome", validators=[DataRequired()])
    note = TextAreaField("Note", validators=[Optional(), Length(max=10_000)])


def _title(view, context, task, name):
    return Markup('<a href="{}">{}</a>').format(url_for("task.page", task_id=task.id), task.title)


def _account(view, context, task, name):
    if task.account is None:
        return task.account_id
    return Markup('<a href="{}">{}</a>').format(url_for("account.page", account_id=task.account_id), task.account)


class TaskView(AdminModelView):
    list_template = "triage_admin/task_list.html"
    column_display_actions = False  # the title links to the page
    column_list = ("title", "account", "assignee", "priority", "due_at", "status", "rule")
    column_labels = {"due_at": "Due"}
    column_sortable_list = ("title", ("account", "account.name"), "assignee", "due_at", "status", "rule")
    column_searchable_list = ("title",)
    column_select_related_list = (Task.account,)  # one joined query for the page, not one per row
    column_filters = (
        TaskStatusFilter(),
        FilterEqual(Task.priority, "Priority", options=[(p, p) for p in PRIORITIES]),
        FilterEqual(Task.assignee, "Assignee"),
        FilterLike(Task.assignee, "Assignee"),
        FilterEqual(Task.account_id, "Account id"),
        FilterLike("account.name", "Account"),
        FilterEqual(Task.rule, "Rule"),
    )
    column_formatters = {
        "title": _title,
        "account": _account,
        "priority": lambda v, c, task, n: fmt.badge(task.priority),
        "status": lambda v, c, task, n: fmt.badge(task.status),
        "due_at": lambda v, c, task, n: fmt.due(task),
        "assignee": lambda v, c, task, n: fmt.text(task.assignee),
        "rule": lambda v, c, task, n: fmt.text(task.rule),
    }

    # -- the list -------------------------------------------------------------------------

    def get_query(self):
        return scope_tasks(super().get_query())

    def get_count_query(self):
        return scope_tasks(super().get_count_query())

    def get_one(self, id):  # guards the details and edit views, should they ever be enabled
        task = super().get_one(id)
        return task if task is not None and may_see_task(task) else None

    def get_list(self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None):
        filters = list(filters or ())
        if not any(isinstance(self._filters[idx], TaskStatusFilter) for idx, _name, _value in filters):
            status_idx = next(i for i, flt in enumerate(self._filters) if isinstance(flt, TaskStatusFilter))
            filters.append((status_idx, "Status", "active"))
        return super().get_list(page, sort_column, sort_desc, search, filters, execute, page_size)

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        if sort_column is None:
            return query.order_by(*Task.urgency_order()), joins
        query, joins = super()._apply_sorting(query, joins, sort_column, sort_desc)
        return query.order_by(Task.id), joins  # stable pages when many rows tie

    def list_heading(self) -> str:
        if current_user.role == "csm":
            return "My tasks"
        return "My team's tasks" if current_user.role == "manager" else "All tasks"

    # -- one task -------------------------------------------------------------------------

    def _visible_task(self, task_id: int) -> Task:
        task = db.session.get(Task, task_id)
        if task is None:
            abort(404)
        if not may_see_task(task):
            abort(403)
        return task

    def _form(self, task: Task) -> CompleteForm:
        form = CompleteForm()
        form.outcome.choices = [(o, o) for o in (task.outcomes or ["done"])]
        return form

    @expose("/<int:task_id>")
    def page(self, task_id: int):
        task = self._visible_task(task_id)
        run = None
        step_tasks: dict[int, int] = {}
        may_open_task: set[int] = set()
        if task.run_id is not None:
            run = db.session.scalars(
                select(PlaybookRun).where(PlaybookRun.id == task.run_id).options(selectinload(PlaybookRun.steps))
            ).first()
            may_see = assignee_check()
            for step_id, other_id, assignee in db.session.execute(
                select(Task.step_id, Task.id, Task.assignee).where(Task.run_id == task.run_id,
                                                                   Task.step_id.is_not(None))
            ):
                step_tasks[step_id] = other_id
                if may_see(assignee):
                    may_open_task.add(other_id)
        event = db.session.get(Event, task.event_id) if task.event_id is not None else None
        return self.render(
            "triage_admin/task.html",
            task=task, account=task.account, run=run, event=event, step_tasks=step_tasks, may_open_task=may_open_task,
            form=self._form(task), can_complete=task.status in fmt.OPEN_TASK,
            show_records=current_user.role in EVERYTHING,
        )

    @expose("/<int:task_id>/complete", methods=["POST"])
    def complete(self, task_id: int):
        from app.playbooks.tasks import TaskError, complete_task

        task = self._visible_task(task_id)
        form = self._form(task)
        if not form.validate_on_submit():
            for field, errors in form.errors.items():
                flash(f"{field}: {'; '.join(errors)}", "error")
            return redirect(url_for(".page", task_id=task_id))
        try:
            complete_task(task_id, form.outcome.data, form.note.data or None, actor=current_user.email)
        except TaskError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for(".page", task_id=task_id))
        flash(f"Completed “{task.title}” with outcome “{form.outcome.data}”.", "success")
        return redirect(url_for(".index_view"))
