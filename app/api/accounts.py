"""`/api/v1/accounts/{id}...`: an account, its health history, its playbook runs, its scores.

A personal token reads only the accounts its person may (app/api/auth.py); another account
answers 404, as one that does not exist.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import RowMapping, func, select
from sqlalchemy.orm import selectinload

from app.api.auth import require_caller, scope_accounts
from app.api.base import ApiBlueprint
from app.api.schemas import AccountSchema, HealthChangeSchema, RunSchema, ScoreQuerySchema, ScoreSchema
from app.errors import ApiError
from app.extensions import db
from app.models import Account, Event, HealthChange, PlaybookRun, Task
from app.models.score import HealthScore

blp = ApiBlueprint(
    "Accounts", __name__, url_prefix="/api/v1", description="Customer accounts: health, history, playbook runs, scores"
)
blp.before_request(require_caller)

OPEN_STATUSES = ("open", "snoozed")


def _ensure_account(account_id: str) -> None:
    if db.session.scalar(scope_accounts(select(Account.id).where(Account.id == account_id))) is None:
        raise ApiError(404, f"no account {account_id!r}")


@blp.route("/accounts/<account_id>")
@blp.response(200, AccountSchema)
@blp.errors(401, 404, 503)
def get_account(account_id: str) -> RowMapping:
    """An account with its current health and its number of open tasks"""
    open_tasks = (
        select(func.count(Task.id))
        .where(Task.account_id == Account.id, Task.status.in_(OPEN_STATUSES))
        .scalar_subquery()
    )
    row = db.session.execute(
        scope_accounts(select(Account, open_tasks.label("open_tasks")).where(Account.id == account_id))
    ).one_or_none()
    if row is None:
        raise ApiError(404, f"no account {account_id!r}")
    return row._mapping


@blp.route("/accounts/<account_id>/health-history")
@blp.response(200, HealthChangeSchema(many=True))
@blp.errors(401, 404, 503)
def health_history(account_id: str) -> Sequence[HealthChange]:
    """The account's status changes, newest first"""
    _ensure_account(account_id)
    return db.session.scalars(
        select(HealthChange)
        .where(HealthChange.account_id == account_id)
        .order_by(HealthChange.at.desc(), HealthChange.id.desc())
    ).all()


@blp.route("/accounts/<account_id>/runs")
@blp.response(200, RunSchema(many=True))
@blp.errors(401, 404, 503)
def runs(account_id: str) -> list[RowMapping]:
    """The account's playbook runs with their steps, newest first"""
    _ensure_account(account_id)
    rows = db.session.execute(
        select(PlaybookRun, Event.external_id.label("trigger_event_id"))
        .outerjoin(Event, PlaybookRun.trigger_event_id == Event.id)
        .where(PlaybookRun.account_id == account_id)
        .options(selectinload(PlaybookRun.steps))
        .order_by(PlaybookRun.started_at.desc(), PlaybookRun.id.desc())
    ).all()
    return [row._mapping for row in rows]


@blp.route("/accounts/<account_id>/scores")
@blp.arguments(ScoreQuerySchema, location="query")
@blp.response(200, ScoreSchema(many=True))
@blp.errors(400, 401, 404, 503)
def scores(args: dict, account_id: str) -> Sequence[HealthScore]:
    """The computed health score over event time, oldest first (one point per day: the day's last)"""
    _ensure_account(account_id)
    query = select(HealthScore).where(HealthScore.account_id == account_id)
    if args.get("since"):
        query = query.where(HealthScore.at >= args["since"])
    if args.get("until"):
        query = query.where(HealthScore.at < args["until"])
    return db.session.execute(query.order_by(HealthScore.day)).scalars().all()
