"""launch_playbook: start another playbook for the same account (once per step)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from app.extensions import db
from app.models import PlaybookRun
from app.playbooks.actions.context import ActionContext
from app.playbooks.actions.registry import action

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["playbook"],
    "properties": {
        "playbook": {"type": "string", "description": "the name of a playbook in playbooks/"},
        "params": {"type": "object", "description": "what the launched run sees as `params`"},
    },
}


@action("launch_playbook", PARAMS)
def launch_playbook(ctx: ActionContext) -> dict[str, Any]:
    """Launch another playbook for this account; a second attempt finds the run it launched."""
    for run in db.session.execute(
        select(PlaybookRun).where(
            PlaybookRun.account_id == ctx.account.id, PlaybookRun.playbook == ctx.params["playbook"]
        )
    ).scalars():
        if (run.context or {}).get("launched_by") == {"run": ctx.run.id, "step": ctx.step.id}:
            return {"launched": True, "run": run.id}
    launched = ctx.launch(ctx.params["playbook"], ctx.params.get("params") or {})
    if launched is None:
        return {"launched": False, "reason": f"a run of {ctx.params['playbook']} is already open for this account"}
    launched.context = {**launched.context, "launched_by": {"run": ctx.run.id, "step": ctx.step.id}}
    return {"launched": True, "run": launched.id}
