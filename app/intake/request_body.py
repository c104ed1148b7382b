"""Checks every intake endpoint makes on the raw request before anything is parsed."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from app.errors import ApiError
from app.intake.event_validation import json_problem


def raw_body(*content_types: str) -> bytes:
    """The raw body after the 413 and 415 checks (CONTRACT.md section 4)."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"body larger than {limit} bytes")
    if request.mimetype not in content_types:
        raise ApiError(415, f"Content-Type must be {' or '.join(content_types)}, not {request.mimetype or 'missing'!r}")
    return request.get_data(cache=True)  # raises 413 for chunked bodies over the limit


def parse_json(body: bytes, storable: bool = True) -> Any:
    """The JSON body; 400 unless it is UTF-8 JSON. With `storable`, also 400 for what the
    database cannot keep anywhere in it (NUL, lone surrogates, NaN or Infinity: see
    event_validation.json_problem), so no endpoint answers a sender's mistake with a 5xx.
    The events API checks item by item instead (`storable=False`), to name the index."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "body is not valid UTF-8") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if storable and (problem := json_problem(payload)):
        raise ApiError(400, f"body cannot be stored: {problem}")
    return payload
