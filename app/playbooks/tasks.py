"""Working a manual task: complete (moves its run on), snooze, reassign, comment.

Every service commits, records an audit entry in the same transaction, and raises
`TaskError(status, message)` (HTTP-like status) for what the caller did wrong.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app import audit, catalog
from app.extensions import db
from app.models import Account, PlaybookRun, RunStep, Task
from app.models.comment import TaskComment
from app.models.types import utcnow
from app.playbooks.runner import advance

OPEN = ("open", "snoozed")


class TaskError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _open_task(task_id: int) -> Task:
    task = db.session.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
    if task is None:
        raise TaskError(404, f"no task {task_id}")
    if task.status not in OPEN:
        raise TaskError(409, f"task {task_id} is already {task.status}")
    return task


def complete_task(task_id: int, outcome: str | None, note: str | None, actor: str) -> Task:
    """Complete a task (commits). 404 unknown, 409 already ended, 400 outcome not allowed."""
    task = _open_task(task_id)
    allowed = list(task.outcomes or ["done"])
    if outcome is None:
        if len(allowed) != 1:
            raise TaskError(400, f"outcome required; allowed: {', '.join(allowed)}")
        outcome = allowed[0]
    if outcome not in allowed:
        raise TaskError(400, f"outcome {outcome!r} not allowed; allowed: {', '.join(allowed)}")
    task.status, task.outcome, task.completed_at, task.completed_by = "done", outcome, utcnow(), actor
    task.snoozed_until = None
    if note:
        task.note = note
    audit.record(
        actor,
        "task.completed",
        "task",
        task.id,
        f"{task.title}: {outcome}",
        {"outcome": outcome, "note": note, "account_id": task.account_id},
    )
    if task.step_id is not None:
        step = db.session.get(RunStep, task.step_id)
        assert step is not None  # task.step_id is a foreign key
        step.status, step.outcome, step.finished_at = "done", outcome, utcnow()
        run = db.session.get(PlaybookRun, task.run_id)
        assert run is not None  # a step's task carries the step's run
        playbook = catalog.current().playbooks.get(run.playbook)
        if playbook is not None:
            account = db.session.get(Account, run.account_id)
            assert account is not None  # run.account_id is a foreign key
            advance(run, playbook, account)
    db.session.commit()
    return task


def snooze_task(task_id: int, until: datetime, reason: str, actor: str) -> Task:
    """Hide a task until `until` (commits). It wakes then, or earlier if the account gets worse.
    400 without a reason or with a time not in the future."""
    if not reason or not reason.strip():
        raise TaskError(400, "a reason is required to snooze a task")
    if until.tzinfo is None:
        raise TaskError(400, "the wake-up time needs a time zone (UTC)")
    if until <= utcnow():
        raise TaskError(400, "the wake-up time must be in the future")
    task = _open_task(task_id)
    task.status, task.snoozed_until, task.snooze_reason = "snoozed", until, reason.strip()
    audit.record(
        actor,
        "task.snoozed",
        "task",
        task.id,
        f"{task.title}: until {until.isoformat()}",
        {"until": until.isoformat(), "reason": reason.strip(), "account_id": task.account_id},
    )
    db.session.commit()
    return task


def wake_task(task: Task, actor: str, why: str) -> None:
    """Back to `open` (no commit): its snooze time came, or the account got worse."""
    until = task.snoozed_until
    task.status, task.snoozed_until = "open", None
    audit.record(
        actor,
        "task.woken",
        "task",
        task.id,
        f"{task.title}: {why}",
        {"snoozed_until": until.isoformat() if until else None, "why": why, "account_id": task.account_id},
    )


def reassign_task(task_id: int, assignee: str, actor: str) -> Task:
    """Give an open or snoozed task to another person (an e-mail address; commits)."""
    assignee = (assignee or "").strip().lower()
    if "@" not in assignee:
        raise TaskError(400, "the assignee must be a person's e-mail address")
    task = _open_task(task_id)
    previous = task.assignee
    if previous == assignee:
        raise TaskError(409, f"task {task_id} is already assigned to {assignee}")
    task.assignee = assignee
    # Reminders and escalation start over for the new person.
    task.overdue_at = task.reminded_at = task.escalated_at = task.escalated_to = None
    if task.step_id is not None:
        step = db.session.get(RunStep, task.step_id)
        assert step is not None  # task.step_id is a foreign key
        step.assignee = assignee
    audit.record(
        actor,
        "task.reassigned",
        "task",
        task.id,
        f"{task.title}: {previous or 'nobody'} -> {assignee}",
        {"from": previous, "to": assignee, "account_id": task.account_id},
    )
    db.session.commit()
    return task


def comment_task(task_id: int, text: str, actor: str) -> TaskComment:
    """Add a comment to a task, open or ended (commits)."""
    if not text or not text.strip():
        raise TaskError(400, "a comment needs text")
    if len(text) > 20000:
        raise TaskError(400, "a comment is at most 20,000 characters")
    task = db.session.get(Task, task_id)
    if task is None:
        raise TaskError(404, f"no task {task_id}")
    comment = TaskComment(task_id=task.id, author=actor, text=text.strip())
    db.session.add(comment)
    db.session.flush()
    audit.record(
        actor,
        "task.commented",
        "task",
        task.id,
        f"{task.title}: comment {comment.id}",
        {"comment_id": comment.id, "account_id": task.account_id},
    )
    db.session.commit()
    return comment
