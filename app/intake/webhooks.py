"""`POST /webhooks/crm`: status changes and account updates from the CRM (CONTRACT.md section 2)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError

from app.errors import ApiError
from app.extensions import db
from app.intake import signatures
from app.intake.request_body import parse_json, raw_body
from app.intake.schemas import CrmWebhookSchema
from app.intake.store import store_events
from app.jobs import enqueue_events

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
crm_schema = CrmWebhookSchema()


@bp.post("/crm")
def crm_webhook() -> tuple[Response, int]:
    body = raw_body("application/json")
    try:
        webhook_id = signatures.verify(
            current_app.config["CRM_WEBHOOK_SECRET"],
            request.headers,
            body,
            tolerance=current_app.config["WEBHOOK_TOLERANCE"],
        )
    except signatures.SignatureError as exc:
        raise ApiError(401, f"signature check failed: {exc}") from None
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise ApiError(400, "body must be a JSON object")
    try:
        data = crm_schema.load(payload)
    except ValidationError as exc:
        raise ApiError(400, "invalid webhook body", details=exc.normalized_messages()) from None

    # Ids only (no Event object to load back after the commit): the 202 needs nothing else.
    event_ids, duplicates = store_events(
        "crm",
        [
            {
                "external_id": webhook_id,
                "type": data["type"],
                "account_id": data["account"]["id"],
                "occurred_at": data["occurred_at"],
                "payload": payload,
            }
        ],
    )
    db.session.commit()
    enqueue_events(event_ids)
    return jsonify(accepted=len(event_ids), duplicates=duplicates), 202
