"""crm_writeback: tell the CRM what happened, by a signed callback to CRM_CALLBACK_URL.

Without CRM_CALLBACK_URL the step succeeds with `{"skipped": true, "reason": ...}`: a
server without a CRM connection still runs its playbooks.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.models.types import utcnow
from app.playbooks.actions.context import ActionContext
from app.playbooks.actions.registry import action
from app.playbooks.outbound import post_signed

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "fields": {
            "type": "object",
            "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
            "description": "account fields to set in the CRM (templates allowed)",
        },
        "note": {"type": "string", "description": "an activity note for the account's timeline"},
    },
    "minProperties": 1,
}


@action("crm_writeback", PARAMS, external=True, timeout=60)
def crm_writeback(ctx: ActionContext) -> dict[str, Any]:
    """Post account fields and a note back to the CRM (signed); skipped without CRM_CALLBACK_URL."""
    url = current_app.config.get("CRM_CALLBACK_URL")
    if not url:
        return {"skipped": True, "reason": "CRM_CALLBACK_URL is not set: nothing written back"}
    body = {
        "type": "account.update_requested",
        "timestamp": utcnow().isoformat(),
        "account": {"id": ctx.account.id, **(ctx.params.get("fields") or {})},
        "note": ctx.params.get("note"),
        "source": {"run": ctx.run.id, "playbook": ctx.run.playbook, "step": ctx.step.name},
    }
    status = post_signed(url, body, msg_id=f"triage-crm-step-{ctx.step.id}")
    return {"status": status, "fields": sorted(ctx.params.get("fields") or {})}
