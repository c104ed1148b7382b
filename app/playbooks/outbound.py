"""Signed outbound webhooks (Standard Webhooks v1), the way the CRM signs what it sends us.

Headers `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>` over
`{id}.{timestamp}.{body}`, keyed by the base64 part of a `whsec_` secret. The id is stable
per step (and per receiver), so a retried delivery is recognisably the same message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from flask import current_app

from app.intake.signatures import sign


class DeliveryError(Exception):
    """The receiver did not take the delivery (connection failure or a non-2xx answer): retry."""


def post_signed(url: str, body: dict, msg_id: str, secret: str | None = None, timeout: float = 10) -> int:
    """POST `body` as JSON, signed; returns the HTTP status (2xx) or raises DeliveryError."""
    secret = secret or current_app.config["OUTBOUND_WEBHOOK_SECRET"]
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(
        url,
        data=raw,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Triage-Webhooks/1",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, msg_id, timestamp, raw),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(f"{url}: {getattr(exc, 'reason', exc)}") from None
