"""Bearer-token authentication for the API (CONTRACT.md sections 3 and 5).

Use `blueprint.before_request(require_token)` for a whole blueprint, or `@token_required`
on one view.
"""
from __future__ import annotations

import hmac
from functools import wraps

from flask import current_app, request

from app.errors import ApiError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="triage"'}


def token_is_valid(given: str) -> bool:
    """True when `given` is one of API_TOKENS; compares with every token, in constant time."""
    given_bytes = given.encode()
    valid = False
    for token in current_app.config.get("API_TOKENS") or ():
        # No early exit: the time taken does not tell which token, or how much of it, matched.
        valid |= hmac.compare_digest(given_bytes, token.encode())
    return valid


def require_token() -> None:
    """Raise a 401 ApiError unless the request carries a valid `Authorization: Bearer` token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token", headers=CHALLENGE)
    if not token_is_valid(token.strip()):
        raise ApiError(401, "invalid bearer token",
                       headers={"WWW-Authenticate": 'Bearer realm="triage", error="invalid_token"'})


def token_required(view):
    """Decorator form of `require_token`."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        require_token()
        return view(*args, **kwargs)

    return wrapper
