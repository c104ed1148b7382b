"""wait: hold the run until a duration has passed or a date (such as the renewal) is reached."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from app.models.types import utcnow
from app.playbooks.actions.context import ActionContext, ActionWait
from app.playbooks.actions.registry import action
from app.playbooks.calendar import add_business_days

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "days": {"type": "integer", "minimum": 0},
        "business_days": {"type": "integer", "minimum": 0, "description": "Monday to Friday"},
        "until": {
            "type": "string",
            "enum": ["renewal_date"],
            "description": "an account date; past or unknown means go on at once",
        },
    },
    "minProperties": 1,
    "maxProperties": 1,
}


@action("wait", PARAMS)
def wait(ctx: ActionContext) -> dict[str, Any] | ActionWait:
    """Wait N days or business days from the step's start, or until the account's renewal date."""
    if "days" in ctx.params:
        until = (ctx.step.started_at or utcnow()) + timedelta(days=int(ctx.params["days"]))
    elif "business_days" in ctx.params:
        until = add_business_days(ctx.step.started_at or utcnow(), int(ctx.params["business_days"]))
    else:
        renewal = ctx.account.renewal_date
        if renewal is None:
            return {"waited": False, "reason": "no renewal date: the subscription end is unknown"}
        until = datetime.combine(renewal, time.min, tzinfo=UTC)
    if until <= utcnow():
        return {"waited": True, "until": until.isoformat()}
    return ActionWait(until=until)
