"""Working a manual task: completing it with an outcome moves its run on."""
from __future__ import annotations

from sqlalchemy import select

from app import audit, catalog
from app.extensions import db
from app.models import Account, PlaybookRun, RunStep, Task
from app.models.types import utcnow
from app.playbooks.runner import advance


class TaskError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def complete_task(task_id: int, outcome: str | None, note: str | None, actor: str) -> Task:
    """Complete a task (commits). 404 unknown, 409 already ended, 400 outcome not allowed."""
    task = db.session.execute(select(Task).where(Task.id == task_id).with_for_update()).scalar_one_or_none()
    if task is None:
        raise TaskError(404, f"no task {task_id}")
    if task.status in ("done", "cancelled"):
        raise TaskError(409, f"task {task_id} is already {task.status}")
    allowed = list(task.outcomes or ["done"])
    if outcome is None:
        if len(allowed) != 1:
            raise TaskError(400, f"outcome required; allowed: {', '.join(allowed)}")
        outcome = allowed[0]
    if outcome not in allowed:
        raise TaskError(400, f"outcome {outcome!r} not allowed; allowed: {', '.join(allowed)}")
    task.status, task.outcome, task.completed_at, task.completed_by = "done", outcome, utcnow(), actor
    if note:
        task.note = note
    audit.record(actor, "task.completed", "task", task.id, f"{task.title}: {outcome}",
                 {"outcome": outcome, "note": note, "account_id": task.account_id})
    if task.step_id is not None:
        step = db.session.get(RunStep, task.step_id)
        step.status, step.outcome, step.finished_at = "done", outcome, utcnow()
        run = db.session.get(PlaybookRun, task.run_id)
        playbook = catalog.current().playbooks.get(run.playbook)
        if playbook is not None:
            advance(run, playbook, db.session.get(Account, run.account_id))
    db.session.commit()
    return task
