"""`POST /webhooks/hubspot`: HubSpot's webhook batches, mapped onto the CRM webhook (CONTRACT 2b).

Verified with HubSpot's signature v3. A `company.propertyChange` of the configured health
property is a status change of company `objectId`; every other event is stored (and can be
matched by rules as `hubspot.<subscriptionType>`) and acknowledged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request

from app.errors import ApiError
from app.intake.request_body import parse_json, raw_body
from app.intake.schemas import normalize_status
from app.intake.store import accept_rows

bp = Blueprint("hubspot", __name__, url_prefix="/webhooks")
REQUIRED = ("eventId", "subscriptionId", "portalId", "occurredAt", "subscriptionType", "objectId")


def signature_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def verify(secret: str | None, body: bytes) -> None:
    if not secret:
        raise ApiError(401, "HubSpot intake is not configured (HUBSPOT_CLIENT_SECRET)")
    given = request.headers.get("X-HubSpot-Signature-v3")
    timestamp = request.headers.get("X-HubSpot-Request-Timestamp")
    if not given or not timestamp:
        raise ApiError(401, "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp")
    try:
        age = time.time() - int(timestamp) / 1000
    except ValueError:
        raise ApiError(401, "X-HubSpot-Request-Timestamp must be epoch milliseconds") from None
    if abs(age) > current_app.config["WEBHOOK_TOLERANCE"]:
        raise ApiError(401, "X-HubSpot-Request-Timestamp is more than 5 minutes off")
    expected = signature_v3(secret, request.method, request.url, body, timestamp)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "X-HubSpot-Signature-v3 does not match")


@bp.post("/hubspot")
def hubspot_webhook() -> tuple[Response, int]:
    body = raw_body("application/json")
    verify(current_app.config.get("HUBSPOT_CLIENT_SECRET"), body)
    payload = parse_json(body)
    events = payload if isinstance(payload, list) else [payload]
    health_property = current_app.config["HUBSPOT_HEALTH_PROPERTY"]
    event_ids, duplicates = accept_rows(
        "hubspot", events, lambda event: to_event_row(event, health_property), "HubSpot event(s)"
    )
    return jsonify(accepted=len(event_ids), duplicates=duplicates), 202


def to_event_row(event, health_property: str) -> dict:
    """One HubSpot event as an Event row: a CRM health change, or a stored custom event."""
    if not isinstance(event, dict):
        raise ValueError("a HubSpot event is a JSON object")
    missing = [key for key in REQUIRED if event.get(key) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    try:
        occurred_at = datetime.fromtimestamp(int(event["occurredAt"]) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("occurredAt must be epoch milliseconds") from None
    account_id = str(event["objectId"])
    # HubSpot's eventId alone is not unique (CONTRACT 2b): the key is the whole tuple.
    key = ":".join(
        str(event.get(k, ""))
        for k in ("portalId", "subscriptionId", "eventId", "objectId", "propertyName", "occurredAt")
    )
    when = occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if event["subscriptionType"] == "company.propertyChange" and event.get("propertyName") == health_property:
        status = normalize_status(event.get("propertyValue"))
        payload = {
            "type": "account.health_changed",
            "occurred_at": when,
            "account": {"id": account_id},
            "health": {"to": status, "changed_by": "hubspot", "reason": event.get("changeSource")},
            "hubspot": event,
        }
        return {
            "external_id": key,
            "type": "account.health_changed",
            "account_id": account_id,
            "occurred_at": occurred_at,
            "payload": payload,
        }
    kind = "hubspot." + str(event["subscriptionType"]).lower()
    payload = {"id": key, "account_id": account_id, "type": kind, "occurred_at": when, "properties": event}
    return {"external_id": key, "type": kind, "account_id": account_id, "occurred_at": occurred_at, "payload": payload}
