"""`POST /api/v1/events`: usage and custom events in batches (CONTRACT.md sections 3 and 4).

A batch of up to 1,000 is validated whole (one bad item rejects it, with the index of
each bad item), then stored in one transaction (unprocessed: the outbox), then handed to a
worker as one job. Ids seen before, or twice in one batch, count as duplicates.
"""

from __future__ import annotations

from flask import Response, jsonify

from app.api.auth import require_token
from app.api.base import ApiBlueprint
from app.errors import ApiError
from app.extensions import db
from app.intake.event_validation import validate_event
from app.intake.request_body import parse_json, raw_body
from app.intake.store import store_events
from app.jobs import enqueue_events

MAX_BATCH = 1000
blp = ApiBlueprint("Events", __name__, url_prefix="/api/v1", description="Usage and custom events in")
blp.before_request(require_token)


@blp.before_request
def _limit_per_token() -> None:
    import hashlib

    from flask import current_app, request

    from app import ratelimit

    token = request.headers.get("Authorization", "")
    ratelimit.check("events", hashlib.sha256(token.encode()).hexdigest()[:16], current_app.config["RATE_LIMIT_API"])


@blp.route("/events", methods=["POST"])
@blp.doc(
    requestBody={
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/Event"},
                        {"type": "array", "maxItems": MAX_BATCH, "items": {"$ref": "#/components/schemas/Event"}},
                    ]
                }
            }
        },
    },
    responses={
        "202": {
            "description": "Stored durably; processing continues in the background",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        }
    },
)
@blp.errors(400, 401, 403, 413, 415, 429, 503)
def post_events() -> tuple[Response, int]:
    """Accept a batch (or one) of usage or custom events."""
    payload = parse_json(raw_body("application/json"), storable=False)  # checked per item
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise ApiError(400, "empty batch")
    if len(items) > MAX_BATCH:
        raise ApiError(400, f"at most {MAX_BATCH} events per request, got {len(items)}")
    errors, valid = {}, []
    for index, item in enumerate(items):
        data, problems = validate_event(item)
        if problems:
            errors[str(index)] = problems
        else:
            assert data is not None  # validate_event answers the event or its problems
            valid.append((data, item))
    if errors:
        raise ApiError(400, f"{len(errors)} invalid event(s); nothing was stored", details=errors)
    event_ids, duplicates = store_events(
        "api",
        [
            {
                "external_id": data["id"],
                "type": data["type"],
                "account_id": data["account_id"],
                "occurred_at": data["occurred_at"],
                "payload": raw,
            }
            for data, raw in valid
        ],
    )
    db.session.commit()
    enqueue_events(event_ids)
    return jsonify(accepted=len(event_ids), duplicates=duplicates), 202
