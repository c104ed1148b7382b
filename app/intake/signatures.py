"""Standard Webhooks (v1) signature check: constant time, 5-minute window."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time


class SignatureError(Exception):
    """The request is not proven to come from the CRM; answered with 401."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret."""
    encoded = secret[len("whsec_") :] if secret.startswith("whsec_") else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("CRM_WEBHOOK_SECRET must be whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for a body (used by tests, demo and docs)."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers, body: bytes, tolerance: int = 300, now: float | None = None) -> str:
    """Check a delivery; return its `webhook-id` or raise SignatureError."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    missing = [
        name
        for name, value in (("webhook-id", msg_id), ("webhook-timestamp", timestamp), ("webhook-signature", signatures))
        if not value
    ]
    if missing:
        raise SignatureError(f"missing header(s): {', '.join(missing)}")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp must be unix seconds") from None
    now = time.time() if now is None else now
    if abs(now - sent_at) > tolerance:
        raise SignatureError("webhook-timestamp is outside the 5-minute window")
    expected = sign(secret, msg_id, sent_at, body).encode()
    # Every listed signature is compared, in constant time, so timing tells nothing.
    valid = False
    for candidate in signatures.split(" "):
        valid |= hmac.compare_digest(candidate.strip().encode(), expected)
    if not valid:
        raise SignatureError("no valid v1 signature for this body and secret")
    return msg_id
