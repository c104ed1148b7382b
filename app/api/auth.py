"""Bearer-token authentication for the API (CONTRACT.md sections 3 and 5), and what a caller sees.

Two kinds of token:
- service tokens (API_TOKENS): a CRM, an analytics pipeline, CS ops' scripts. They see and do
  everything, as the contract says.
- personal tokens (`trg_...`, app/models/api_token.py, `flask users token EMAIL`): a person's
  own. They act as that person and see what the admin shows them (app/admin/access.py: a CSM
  their own work, a manager their team's, CS ops and admins everything).

`blueprint.before_request(require_caller)` takes either (the read and act API: its views scope
with `scope_tasks`, `scope_accounts`, `may_see_task`, `may_see_account`). `require_token` (and
`@token_required`) take service tokens only: a personal token is refused with 403 there, so an
endpoint that does not scope its answers (the events intake) cannot be reached by one.
The caller's user is `flask.g.api_user` (None for a service token).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import current_app, g, request
from sqlalchemy import select, update

from app.admin import access
from app.admin.access import Q
from app.errors import ApiError
from app.extensions import db
from app.models import Account, ApiToken, Task, User
from app.models.api_token import token_hash
from app.models.types import utcnow

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="triage"'}
INVALID = {"WWW-Authenticate": 'Bearer realm="triage", error="invalid_token"'}
# last_used_at is written at most this often per token: a burst of reads costs one write, not one each.
LAST_USED_RESOLUTION = timedelta(seconds=60)
P = ParamSpec("P")
R = TypeVar("R")


def token_is_valid(given: str) -> bool:
    """True when `given` is one of API_TOKENS; compares with every token, in constant time."""
    given_bytes = given.encode()
    valid = False
    for token in current_app.config.get("API_TOKENS") or ():
        # No early exit: the time taken does not tell which token, or how much of it, matched.
        valid |= hmac.compare_digest(given_bytes, token.encode())
    return valid


def _bearer() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token", headers=CHALLENGE)
    return token.strip()


def personal_token_user(given: str, note_use: bool = True) -> User | None:
    """The active user of a personal token that is not revoked, else None. Notes the use
    (`last_used_at`) unless `note_use` is False (a request refused anyway).

    Looked up by the token's SHA-256 (unique index): the token itself is never stored, and
    an index lookup of a hash does not tell an attacker how much of a guess was right.
    """
    row = db.session.execute(
        select(ApiToken.id, ApiToken.last_used_at, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == token_hash(given), ApiToken.revoked_at.is_(None))
    ).one_or_none()
    if row is None or not row.User.active:
        return None
    now = utcnow()
    if note_use and (row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION):
        db.session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        db.session.commit()
    g.api_token_id = row.id
    return row.User


def require_caller() -> None:
    """Authenticate a service or a personal token (401 otherwise); sets `g.api_user`."""
    given = _bearer()
    g.api_user, g.api_token_id = None, None
    if token_is_valid(given):
        return
    user = personal_token_user(given)
    if user is None:
        raise ApiError(401, "invalid bearer token", headers=INVALID)
    g.api_user = user


def require_token() -> None:
    """Service tokens only: 401 without a valid token, 403 for a (valid) personal token."""
    given = _bearer()
    g.api_user, g.api_token_id = None, None
    if token_is_valid(given):
        return
    if personal_token_user(given, note_use=False) is not None:
        raise ApiError(403, "this endpoint takes a service token (API_TOKENS), not a personal token")
    raise ApiError(401, "invalid bearer token", headers=INVALID)


def token_required(view: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of `require_token`."""

    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        require_token()
        return view(*args, **kwargs)

    return wrapper


# -- what the caller may see (after require_caller) ---------------------------------------------


def api_user() -> User | None:
    """The person behind the request's personal token; None for a service token."""
    return g.get("api_user")


def actor() -> str:
    """Who the audit log names: the person, or "api" for a service token."""
    user = api_user()
    return user.email if user is not None else "api"


def scope_tasks(query: Q) -> Q:
    user = api_user()
    return query if user is None else access.scope_tasks_for(user, query)


def scope_accounts(query: Q) -> Q:
    user = api_user()
    return query if user is None else access.scope_accounts_for(user, query)


def may_see_task(task: Task) -> bool:
    user = api_user()
    return user is None or access.may_see_task_for(user, task)


def may_see_account(account: Account) -> bool:
    user = api_user()
    return user is None or access.may_see_account_for(user, account)
