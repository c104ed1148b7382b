"""`/api/v1/tasks`: the manual tasks, most urgent first, and completing one.

A personal token sees and completes only the tasks its person may (app/api/auth.py); a task
outside that scope answers 404, as one that does not exist.
"""

from __future__ import annotations

from sqlalchemy import RowMapping, func, select

from app.api.auth import actor, api_user, may_see_task, require_caller, scope_tasks
from app.api.base import ApiBlueprint
from app.api.schemas import CompleteTaskSchema, TaskQuerySchema, TaskSchema
from app.errors import ApiError
from app.extensions import db
from app.models import Event, Task
from app.playbooks.tasks import TaskError, complete_task

blp = ApiBlueprint("Tasks", __name__, url_prefix="/api/v1", description="Manual tasks for CSMs and managers")
blp.before_request(require_caller)

TOTAL_HEADER = {
    "X-Total-Count": {
        "description": "Tasks matching the filters, before limit and offset",
        "schema": {"type": "integer"},
    }
}


def _task_rows():
    """Tasks with the sender's id of the event that caused them, in one query."""
    return select(Task, Event.external_id.label("event_id")).outerjoin(Event, Task.event_id == Event.id)


def _filters(args: dict) -> list:
    conditions = []
    if args.get("assignee"):
        conditions.append(func.lower(Task.assignee) == args["assignee"].strip().lower())
    if args.get("account"):
        conditions.append(Task.account_id == args["account"])
    if args.get("status"):
        conditions.append(Task.status.in_(args["status"]))
    if args.get("priority"):
        conditions.append(Task.priority.in_(args["priority"]))
    return conditions


@blp.route("/tasks")
@blp.arguments(TaskQuerySchema, location="query")
@blp.response(200, TaskSchema(many=True), headers=TOTAL_HEADER)
@blp.errors(400, 401, 503)
def list_tasks(args: dict) -> tuple[list[RowMapping], dict[str, str]]:
    """Manual tasks, most urgent first (priority, then the earliest due date)

    `status` and `priority` take one value or several, comma-separated.
    """
    conditions = _filters(args)
    total = db.session.scalar(scope_tasks(select(func.count(Task.id)).where(*conditions)))
    rows = db.session.execute(
        scope_tasks(_task_rows().where(*conditions))
        .order_by(*Task.urgency_order())
        .limit(args["limit"])
        .offset(args["offset"])
    ).all()
    return [row._mapping for row in rows], {"X-Total-Count": str(total)}


@blp.route("/tasks/<int:task_id>/complete", methods=["POST"])
@blp.arguments(CompleteTaskSchema, required=False)
@blp.response(200, TaskSchema)
@blp.errors(400, 401, 404, 409, 503)
def complete(body: dict, task_id: int) -> RowMapping:
    """Complete a task with one of its outcomes; its playbook run moves on

    Without `outcome`, a task that has exactly one outcome is completed with it.
    """
    if api_user() is not None:
        task = db.session.get(Task, task_id)
        if task is None or not may_see_task(task):
            raise ApiError(404, f"no task {task_id}")  # the same answer: existence is not revealed
    try:
        complete_task(task_id, body.get("outcome"), body.get("note"), actor=actor())
    except TaskError as exc:
        db.session.rollback()  # releases the row lock complete_task took
        raise ApiError(exc.status, exc.message) from None
    return db.session.execute(_task_rows().where(Task.id == task_id)).one()._mapping
