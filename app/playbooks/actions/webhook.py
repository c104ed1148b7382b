"""webhook: a signed POST to a URL, as plain JSON or as a Slack- or Teams-compatible message.

`format: slack` sends `{"text": ...}` (Slack incoming webhooks), `format: teams` a MessageCard
(Teams incoming webhooks), `format: json` (the default) an event envelope with the account,
run and step. The `webhook-id` is the same on every attempt of the step: receivers de-duplicate.
"""

from __future__ import annotations

from typing import Any

from app.models.types import utcnow
from app.playbooks.actions.context import ActionContext
from app.playbooks.actions.registry import action
from app.playbooks.outbound import post_signed

PARAMS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["url"],
    "properties": {
        "url": {
            "type": "string",
            "pattern": "^(https?://|\\{\\{)",
            "description": "http(s) URL of the receiver (or a template)",
        },
        "format": {"enum": ["json", "slack", "teams"], "default": "json"},
        "text": {"type": "string", "description": "the message (template); Slack and Teams show it"},
        "type": {"type": "string", "description": "event type of a json body", "default": "triage.playbook_step"},
    },
}


@action("webhook", PARAMS, external=True, timeout=60)
def webhook(ctx: ActionContext) -> dict[str, Any]:
    """POST a signed webhook (json, slack or teams body) and record the answer."""
    params = ctx.params
    text = params.get("text") or f"{ctx.run.playbook}: {ctx.step.name} for {ctx.account.name or ctx.account.id}"
    body = build_body(params.get("format", "json"), text, ctx, params.get("type", "triage.playbook_step"))
    status = post_signed(params["url"], body, msg_id=f"triage-step-{ctx.step.id}")
    return {"status": status, "url": params["url"], "format": params.get("format", "json")}


def build_body(fmt: str, text: str, ctx, event_type: str) -> dict:
    if fmt == "slack":
        return {"text": text}
    if fmt == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text[:100],
            "themeColor": "D70000" if ctx.account.health_status in ("red", "black") else "0076D7",
            "text": text,
        }
    return {
        "type": event_type,
        "timestamp": utcnow().isoformat(),
        "data": {
            "text": text,
            "account": ctx.template_context["account"],
            "run": {"id": ctx.run.id, "playbook": ctx.run.playbook, "rule": ctx.run.rule},
            "step": {"id": ctx.step.id, "name": ctx.step.name},
        },
    }
