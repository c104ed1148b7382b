"""Every payload the read and act API takes and gives (CONTRACT.md section 5).

The same classes validate requests, serialize responses and write the OpenAPI document.
Views hand the output schemas SQLAlchemy rows such as ``(Task, event_id)``, so fields
read through dotted attributes ("Task.title"): each value comes from one query, no N+1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from app.intake.event_validation import MAX_INT32, text_problem
from app.models.run import RUN_STATUSES, STEP_STATUSES
from app.models.task import PRIORITIES, TASK_STATUSES


class UTCDateTime(fields.DateTime):
    """ISO 8601 in UTC with a trailing Z out; any ISO 8601 in (a time without offset is UTC)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        value = value.astimezone(UTC)
        # Whole seconds as GitHub writes them; sub-second parts only where the data has them.
        timespec = "milliseconds" if value.microsecond >= 1000 else "seconds"
        return value.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid", input=value, obj_type="datetime")
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise self.make_error("invalid", input=value, obj_type="datetime") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC time
            raise self.make_error("invalid", input=value, obj_type="datetime") from None


class Text(fields.Str):
    """A string the database can store (no NUL character, no lone surrogate): else 400, not a failed query."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if problem := text_problem(value):
            raise ValidationError(problem)
        return value


class Lower(fields.Str):
    """A case-insensitive keyword (a status, a priority): compared in lower case."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()


def each_one_of(choices: tuple[str, ...]) -> Callable[[list[str]], None]:
    """List validator whose message names the allowed values.

    Not validate.ContainsOnly: apispec would document its choices as an enum of the array
    itself; the enum belongs to the items (see the fields' metadata).
    """

    def validator(values: list[str]) -> None:
        wrong = [value for value in values if value not in choices]
        if wrong:
            raise ValidationError(f"{', '.join(wrong)}: not one of {', '.join(choices)}")

    return validator


class Inline(fields.Nested):
    """A nested object built from the parent's own row (`why` of a task)."""

    def get_value(self, obj: Any, attr: str, accessor=None, default=None) -> Any:
        return obj


# ---- errors ------------------------------------------------------------------------


class ErrorSchema(Schema):
    """The one error shape of the contract (section 4)."""

    error = fields.Str(required=True, metadata={"description": "What went wrong"})
    details = fields.Dict(
        keys=fields.Str(),
        values=fields.Raw(),
        metadata={"description": "Per field (or per batch index): a list of messages"},
    )


# ---- accounts ----------------------------------------------------------------------


class HealthSchema(Schema):
    status = fields.Str(
        attribute="health_status", allow_none=True, metadata={"description": "Lower-case status of the health scheme"}
    )
    since = UTCDateTime(attribute="health_since", allow_none=True)
    reason = fields.Str(attribute="health_reason", allow_none=True)


class AccountSchema(Schema):
    """Dumped from a row of (Account, open_tasks)."""

    id = fields.Str(attribute="Account.id", required=True)
    name = fields.Str(attribute="Account.name", allow_none=True)
    segment = fields.Str(attribute="Account.segment", allow_none=True)
    lifecycle_stage = fields.Str(attribute="Account.lifecycle_stage", allow_none=True)
    csm = fields.Str(attribute="Account.csm", allow_none=True, metadata={"description": "E-mail"})
    health = fields.Nested(HealthSchema, attribute="Account")
    score = fields.Int(attribute="Account.score", allow_none=True)
    open_tasks = fields.Int(metadata={"description": "Tasks open or snoozed"})


class HealthChangeSchema(Schema):
    status = fields.Str()
    previous = fields.Str(allow_none=True, metadata={"description": "The status the server had before"})
    at = UTCDateTime()
    reason = fields.Str(allow_none=True)
    changed_by = fields.Str(allow_none=True)
    source = fields.Str(metadata={"description": "Where the change came from, e.g. crm"})


class StepSchema(Schema):
    name = fields.Str()
    kind = fields.Str(metadata={"description": "task (manual) or action (automated)"})
    status = fields.Str(
        metadata={
            "description": f"Automated: {', '.join(STEP_STATUSES)}; manual: as its task ({', '.join(TASK_STATUSES)})"
        }
    )
    assignee = fields.Str(allow_none=True)
    due_at = UTCDateTime(allow_none=True)
    outcome = fields.Str(allow_none=True)


class RunSchema(Schema):
    """Dumped from a row of (PlaybookRun, trigger_event_id)."""

    id = fields.Int(attribute="PlaybookRun.id")
    playbook = fields.Str(attribute="PlaybookRun.playbook")
    rule = fields.Str(attribute="PlaybookRun.rule", allow_none=True)
    trigger_event_id = fields.Str(
        allow_none=True, metadata={"description": "The sender's id of the trigger event (webhook-id or event id)"}
    )
    triggered_at = UTCDateTime(
        attribute="PlaybookRun.triggered_at",
        allow_none=True,
        metadata={"description": "The trigger event's occurred_at"},
    )
    status = fields.Str(attribute="PlaybookRun.status", metadata={"enum": list(RUN_STATUSES)})
    started_at = UTCDateTime(attribute="PlaybookRun.started_at")
    finished_at = UTCDateTime(attribute="PlaybookRun.finished_at", allow_none=True)
    steps = fields.List(fields.Nested(StepSchema), attribute="PlaybookRun.steps")


class ScoreQuerySchema(Schema):
    since = UTCDateTime(metadata={"description": "Event time, inclusive (ISO 8601)"})
    until = UTCDateTime(metadata={"description": "Event time, exclusive (ISO 8601)"})

    @validates_schema
    def _ordered(self, data, **kwargs):
        if "since" in data and "until" in data and data["since"] > data["until"]:
            raise ValidationError("must not be before since", "until")


class ScoreSchema(Schema):
    at = UTCDateTime()
    score = fields.Int()
    band = fields.Str()


# ---- tasks -------------------------------------------------------------------------


class TaskQuerySchema(Schema):
    assignee = Text(metadata={"description": "A person's e-mail (case-insensitive)"})
    status = DelimitedList(
        Lower(metadata={"enum": list(TASK_STATUSES)}),
        validate=each_one_of(TASK_STATUSES),
        metadata={"description": "Comma-separated: " + ", ".join(TASK_STATUSES)},
    )
    account = Text(metadata={"description": "Account id"})
    priority = DelimitedList(
        Lower(metadata={"enum": list(PRIORITIES)}),
        validate=each_one_of(PRIORITIES),
        metadata={"description": "Comma-separated: " + ", ".join(PRIORITIES)},
    )
    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))
    # Bounded: SQLite cannot bind an integer past 2**63 - 1, and no list is that long.
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=MAX_INT32))


class WhySchema(Schema):
    rule = fields.Str(attribute="Task.rule", allow_none=True)
    event_id = fields.Str(allow_none=True, metadata={"description": "The sender's id of the trigger event"})


class TaskSchema(Schema):
    """Dumped from a row of (Task, event_id)."""

    id = fields.Int(attribute="Task.id")
    account_id = fields.Str(attribute="Task.account_id")
    run_id = fields.Int(attribute="Task.run_id", allow_none=True)
    title = fields.Str(attribute="Task.title")
    assignee = fields.Str(attribute="Task.assignee", allow_none=True)
    priority = fields.Str(attribute="Task.priority", metadata={"enum": list(PRIORITIES)})
    status = fields.Str(attribute="Task.status", metadata={"enum": list(TASK_STATUSES)})
    due_at = UTCDateTime(attribute="Task.due_at", allow_none=True)
    created_at = UTCDateTime(attribute="Task.created_at")
    outcome = fields.Str(attribute="Task.outcome", allow_none=True)
    why = Inline(WhySchema)


class CompleteTaskSchema(Schema):
    outcome = Text(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "One of the task's outcomes; may be left out when the task has only one"},
    )
    note = Text(validate=validate.Length(max=10000))


# ---- health ------------------------------------------------------------------------


class HealthzSchema(Schema):
    status = fields.Str(metadata={"enum": ["ok", "unavailable"]})
    database = fields.Str(metadata={"enum": ["ok", "down"]})
    redis = fields.Str(metadata={"enum": ["ok", "down"]})
    down = fields.List(fields.Str(), metadata={"description": "What is down (503 only)"})


class AcceptedSchema(Schema):
    """What the intake endpoints answer with 202."""

    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
