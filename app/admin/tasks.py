"""Tasks: the CSM's work list (the admin's landing page) and the page of one task."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import BaseSQLAFilter, FilterEqual, FilterLike
from flask_login import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Query, selectinload
from werkzeug.wrappers import Response
from wtforms import DateField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.admin import formatting as fmt
from app.admin.access import EVERYTHING, assignee_check, may_see_task, scope_tasks, team_emails
from app.admin.views import ScopedModelView
from app.extensions import db
from app.models import PRIORITIES, AuditEntry, Event, PlaybookRun, Task, User
from app.models.comment import TaskComment
from app.playbooks import tasks as task_services
from app.playbooks.tasks import TaskError, complete_task, snooze_task

DEFAULT_SNOOZE_DAYS = 7
ACTIVITY_SHOWN = 50


class TaskStatusFilter(BaseSQLAFilter):
    """Status, with "open or snoozed" (the default when no status is chosen) and "any"."""

    CHOICES = (
        ("active", "open or snoozed"),
        ("open", "open"),
        ("snoozed", "snoozed"),
        ("done", "done"),
        ("cancelled", "cancelled"),
        ("any", "any status"),
    )

    def __init__(self) -> None:
        super().__init__(Task.status, "Status", options=self.CHOICES)

    def validate(self, value) -> bool:
        return value in dict(self.CHOICES)

    def apply(self, query: Query[Any], value: str, alias: Any = None) -> Query[Any]:
        if value == "active":
            return query.filter(Task.status.in_(fmt.OPEN_TASK))
        if value == "any":
            return query
        return query.filter(Task.status == value)

    def operation(self) -> str:
        return "equals"


class DueFilter(BaseSQLAFilter):
    """Due: overdue, due today, due within a week, no due date."""

    CHOICES = (
        ("overdue", "overdue"),
        ("today", "due by the end of today"),
        ("week", "due within 7 days"),
        ("none", "no due date"),
    )

    def __init__(self) -> None:
        super().__init__(Task.due_at, "Due", options=self.CHOICES)

    def validate(self, value) -> bool:
        return value in dict(self.CHOICES)

    def apply(self, query: Query[Any], value: str, alias: Any = None) -> Query[Any]:
        now = datetime.now(UTC)
        if value == "overdue":
            return query.filter(Task.due_at < now)
        if value == "today":
            end = datetime.combine(now.date() + timedelta(days=1), time(), UTC)
            return query.filter(Task.due_at < end)
        if value == "week":
            return query.filter(Task.due_at < now + timedelta(days=7))
        return query.filter(Task.due_at.is_(None))

    def operation(self) -> str:
        return "is"


def _playbooks():
    from app import catalog

    try:
        names = sorted(catalog.current().playbooks)
    except Exception:  # the catalog is the playbooks area's: a page must not fail on it
        names = []
    return [(name, name) for name in names]


class CompleteForm(FlaskForm):
    outcome = SelectField("Outcome", validators=[DataRequired()])
    note = TextAreaField("Note", validators=[Optional(), Length(max=10_000)])


class SnoozeForm(FlaskForm):
    until = DateField("Until", validators=[DataRequired()])
    reason = StringField("Reason", validators=[DataRequired(), Length(max=500)])


class ReassignForm(FlaskForm):
    assignee = SelectField("Assign to", validators=[DataRequired()])


class CommentForm(FlaskForm):
    text = TextAreaField("Comment", validators=[DataRequired(), Length(max=10_000)])


def snooze_until(day: date) -> datetime:
    """A snooze ends at the start of the chosen day (UTC)."""
    return datetime.combine(day, time(), UTC)


def _assignees() -> list[tuple[str, str]]:
    """The people a task may be handed to: active CSMs and managers the signed-in user may see
    (a CSM may hand work to anyone on the CS team)."""
    query = select(User).where(User.active.is_(True), User.role.in_(("csm", "manager"))).order_by(User.email)
    users = db.session.scalars(query).all()
    return [(u.email, f"{u.name} ({u.email})" if u.name else u.email) for u in users]


def _title(view, context, task, name):
    return Markup('<a href="{}">{}</a>').format(url_for("task.page", task_id=task.id), task.title)


def _account(view, context, task, name):
    if task.account is None:
        return task.account_id
    return Markup('<a href="{}">{}</a>').format(url_for("account.page", account_id=task.account_id), task.account)


class TaskView(ScopedModelView):
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
        FilterEqual("run.playbook", "Playbook", options=_playbooks),
        DueFilter(),
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

    scope = staticmethod(scope_tasks)
    may_see = staticmethod(may_see_task)

    def get_list(
        self, page, sort_column, sort_desc, search, filters, execute=True, page_size=None
    ) -> tuple[int | None, list[Task] | Query[Task]]:
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

    def render(self, template: str, **kwargs: Any) -> str:
        kwargs.setdefault(
            "default_snooze_until",
            (datetime.now(UTC).date() + timedelta(days=DEFAULT_SNOOZE_DAYS)).isoformat(),
        )
        return super().render(template, **kwargs)

    def list_heading(self) -> str:
        if current_user.role == "csm":
            return "My tasks"
        return "My team's tasks" if current_user.role == "manager" else "All tasks"

    # -- bulk actions ----------------------------------------------------------------------

    def _selected(self, ids) -> Sequence[Task]:
        """The selected tasks the signed-in user may work (others are silently out of scope)."""
        wanted = [int(i) for i in ids if str(i).isdigit()]
        return db.session.scalars(scope_tasks(select(Task).where(Task.id.in_(wanted))).order_by(Task.id)).all()

    @action(
        "complete",
        "Complete",
        "Complete the selected tasks? Tasks that need an outcome chosen stay open: complete those one by one.",
    )
    def action_complete(self, ids) -> None:
        done, skipped, failed = self._each_selected(
            ids,
            lambda task: task.status in fmt.OPEN_TASK and len(task.outcomes or ["done"]) == 1,
            lambda task: complete_task(task.id, None, None, actor=current_user.email),
            TaskError,
        )
        _report("Completed", done, skipped, failed, "need an outcome chosen or are closed")

    @action("snooze", "Snooze", "Snooze the selected tasks until the date given above the list?")
    def action_snooze(self, ids) -> None:
        try:
            day = date.fromisoformat(request.form.get("snooze_until") or "")
        except ValueError:
            day = datetime.now(UTC).date() + timedelta(days=DEFAULT_SNOOZE_DAYS)
        until = snooze_until(day)
        if until <= datetime.now(UTC):
            flash("Snooze until a day in the future.", "error")
            return
        reason = (request.form.get("snooze_reason") or "").strip()[:500] or "Snoozed from the task list"
        done, skipped, failed = self._each_selected(
            ids,
            lambda task: task.status in fmt.OPEN_TASK,
            lambda task: snooze_task(task.id, until, reason, actor=current_user.email),
            TaskError,
        )
        _report(f"Snoozed until {day.isoformat()}", done, skipped, failed, "are closed")

    def _each_selected(self, ids, eligible, act, error_class) -> tuple[int, int, list[str]]:
        """Apply a task service to each selected task the user may see: (done, skipped, errors)."""
        done, skipped, failed = 0, 0, []
        for task in self._selected(ids):
            if not eligible(task):
                skipped += 1
                continue
            try:
                act(task)
                done += 1
            except error_class as exc:
                db.session.rollback()
                failed.append(exc.message)
        return done, skipped, failed

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
    def page(self, task_id: int) -> str:
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
                select(Task.step_id, Task.id, Task.assignee).where(
                    Task.run_id == task.run_id, Task.step_id.is_not(None)
                )
            ):
                assert step_id is not None  # the query takes only tasks of a step
                step_tasks[step_id] = other_id
                if may_see(assignee):
                    may_open_task.add(other_id)
        event = db.session.get(Event, task.event_id) if task.event_id is not None else None
        is_open = task.status in fmt.OPEN_TASK
        reassign = None
        if is_open:
            reassign = ReassignForm(assignee=(task.assignee or "").lower())
            reassign.assignee.choices = _assignees()
        return self.render(
            "triage_admin/task.html",
            task=task,
            account=task.account,
            run=run,
            event=event,
            step_tasks=step_tasks,
            may_open_task=may_open_task,
            form=self._form(task),
            can_complete=is_open,
            snooze=SnoozeForm(until=datetime.now(UTC).date() + timedelta(days=DEFAULT_SNOOZE_DAYS))
            if is_open
            else None,
            reassign=reassign,
            comment=CommentForm(),
            activity=self._activity(task),
            show_records=current_user.role in EVERYTHING,
        )

    def _activity(self, task: Task) -> list[dict]:
        """Comments and audit entries of the task, newest first (two queries)."""
        items: list[dict[str, Any]] = []
        for c in db.session.scalars(
            select(TaskComment)
            .where(TaskComment.task_id == task.id)
            .order_by(TaskComment.created_at.desc())
            .limit(ACTIVITY_SHOWN)
        ):
            items.append({"at": c.created_at, "who": c.author, "kind": "comment", "text": c.text})
        for e in db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.object_type == "task", AuditEntry.object_id == str(task.id))
            .order_by(AuditEntry.at.desc())
            .limit(ACTIVITY_SHOWN)
        ):
            if e.action == "task.commented":
                continue  # shown as the comment itself
            items.append({"at": e.at, "who": e.actor, "kind": e.action, "text": e.summary})
        items.sort(key=lambda item: item["at"], reverse=True)
        return items[:ACTIVITY_SHOWN]

    def _call(self, task_id: int, name: str, *args) -> bool:
        """Call a task service; a TaskError becomes a flash. True when it worked."""
        function = getattr(task_services, name)
        try:
            function(task_id, *args, actor=current_user.email)
        except TaskError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return False
        return True

    def _flash_errors(self, form) -> None:
        for field, errors in form.errors.items():
            label = getattr(getattr(form, field, None), "label", None)
            flash(f"{label.text if label else field}: {'; '.join(errors)}", "error")

    @expose("/<int:task_id>/snooze", methods=["POST"])
    def snooze(self, task_id: int) -> Response:
        task = self._visible_task(task_id)
        form = SnoozeForm()
        if not form.validate_on_submit():
            self._flash_errors(form)
        elif snooze_until(form.until.data) <= datetime.now(UTC):
            flash("Until: choose a day in the future.", "error")
        elif self._call(task_id, "snooze_task", snooze_until(form.until.data), form.reason.data.strip()):
            flash(f"Snoozed “{task.title}” until {form.until.data.isoformat()}.", "success")
            return redirect(url_for(".index_view"))
        return redirect(url_for(".page", task_id=task_id))

    @expose("/<int:task_id>/reassign", methods=["POST"])
    def reassign(self, task_id: int) -> Response:
        task = self._visible_task(task_id)
        form = ReassignForm()
        form.assignee.choices = _assignees()
        if not form.validate_on_submit():
            self._flash_errors(form)
            return redirect(url_for(".page", task_id=task_id))
        if not self._call(task_id, "reassign_task", form.assignee.data):
            return redirect(url_for(".page", task_id=task_id))
        flash(f"“{task.title}” is now {form.assignee.data}'s.", "success")
        # The task may have left the signed-in user's scope: back to the list, not a 403.
        team = team_emails()
        if team is not None and form.assignee.data.lower() not in team:
            return redirect(url_for(".index_view"))
        return redirect(url_for(".page", task_id=task_id))

    @expose("/<int:task_id>/comment", methods=["POST"])
    def comment(self, task_id: int) -> Response:
        self._visible_task(task_id)
        form = CommentForm()
        if not form.validate_on_submit():
            self._flash_errors(form)
        elif self._call(task_id, "comment_task", form.text.data.strip()):
            flash("Comment added.", "success")
        return redirect(url_for(".page", task_id=task_id) + "#activity")

    @expose("/<int:task_id>/complete", methods=["POST"])
    def complete(self, task_id: int) -> Response:
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


def _report(verb: str, done: int, skipped: int, failed: list[str], why_skipped: str) -> None:
    if done:
        flash(f"{verb}: {done} task(s).", "success")
    if skipped:
        flash(f"{skipped} task(s) left as they are: they {why_skipped}.", "warning")
    for message in failed[:5]:
        flash(message, "error")
    if not (done or skipped or failed):
        flash("No task selected that you may change.", "warning")
