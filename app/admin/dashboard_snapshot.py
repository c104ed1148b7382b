"""The dashboard's figures, computed off the request path and kept in Redis per scope.

A page view never computes the 26-week history: it reads the scope's snapshot (one Redis GET)
and, when the snapshot is older than LIVE_SECONDS or the health history has changed since
(one indexed `max(id)`), asks a worker to refresh it (`workers.maintenance.refresh_dashboard`, at most one
request per scope at a time) and shows the stored figures with their "as of". The periodic
job `warm-dashboards` (workers/periodic.py) refreshes every scope - everything, and each
manager's team - so the first view after a start is warm too. Only a scope that has never
been computed (or Redis unavailable) is computed in the request.

A refresh reuses what has not changed: the weekly status history and cancellations while no
health change was stored and the week is the same; the weekly scores for SCORES_REFRESH_SECONDS
while no score was stored. The live figures (status now, breakdowns, CSM load) are always new.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import cast

import redis
from flask import Flask, current_app
from flask_login import current_user, login_user
from sqlalchemy import func, select
from werkzeug.local import LocalProxy

from app.admin import dashboard_figures as figures
from app.admin.access import EVERYTHING
from app.extensions import db
from app.jobs import enqueue_dashboard_refresh
from app.models import HealthChange, User
from app.models.score import HealthScore
from app.redis_conn import get_redis

log = logging.getLogger(__name__)

VERSION = "v2"
LIVE_SECONDS = 60
SCORES_REFRESH_SECONDS = 600
KEEP_SECONDS = 7 * 24 * 3600
REFRESH_LOCK_SECONDS = 60
ALL = "all"


def scope_of(user) -> str:
    return ALL if user.role in EVERYTHING else f"team:{user.email.lower()}"


def _key(scope: str) -> str:
    return f"triage:dashboard:{VERSION}:{scope}"


def history_version() -> int:
    return db.session.scalar(select(func.max(HealthChange.id))) or 0


def compute(now: datetime, previous: dict | None = None) -> dict:
    """Every figure of the dashboard for the signed-in user's scope, reusing `previous`'s
    history and weekly scores where nothing they depend on changed."""
    points = figures.week_points(now)
    week = points[0].date().isoformat()
    version = history_version()
    scores_version = db.session.scalar(select(func.max(HealthScore.id))) or 0
    earlier = previous if previous is not None and previous.get("week") == week else None  # reused within a week
    if earlier is not None and earlier["history_version"] == version:
        history = earlier["history"]
    else:
        history = {"over_time": figures.status_over_time(points), "cancellations": figures.cancellations(points)}
    if (
        earlier is not None
        and earlier["scores_version"] == scores_version
        and now.timestamp() - earlier["scores_at"] < SCORES_REFRESH_SECONDS
    ):
        scores_weekly, scores_at = earlier["scores_weekly"], earlier["scores_at"]
    else:
        scores_weekly, scores_at = figures.weekly_scores(points), now.timestamp()
    return {
        "as_of": now.isoformat(),
        "week": week,
        "history_version": version,
        "history": history,
        "scores_version": scores_version,
        "scores_at": scores_at,
        "scores_weekly": scores_weekly,
        "live": {
            "now_counts": figures.status_now(),
            "scores": figures.score_summary(),
            "breakdowns": figures.breakdowns(),
            "load": figures.csm_load(now),
        },
    }


def load(scope: str) -> dict | None:
    try:
        stored = get_redis().get(_key(scope))
    except redis.RedisError as exc:
        log.warning("dashboard snapshot unavailable: %s", exc)
        return None
    return json.loads(stored) if stored is not None else None


def store(scope: str, snapshot: dict) -> None:
    try:
        get_redis().set(_key(scope), json.dumps(snapshot), ex=KEEP_SECONDS)
    except redis.RedisError as exc:
        log.warning("dashboard snapshot not stored: %s", exc)


def is_stale(snapshot: dict, now: datetime) -> bool:
    age = now - datetime.fromisoformat(snapshot["as_of"])
    return age.total_seconds() > LIVE_SECONDS or snapshot["history_version"] != history_version()


def for_page(now: datetime) -> dict:
    """The signed-in user's snapshot: stored (a refresh requested when stale), or computed
    here only when the scope has none yet."""
    scope = scope_of(current_user)
    snapshot = load(scope)
    if snapshot is None:
        snapshot = compute(now)
        store(scope, snapshot)
    elif is_stale(snapshot, now):
        request_refresh(scope)
    return snapshot


def request_refresh(scope: str) -> bool:
    """Enqueue one refresh for `scope` unless one is already pending (a lock with a timeout,
    so a lost job only delays the next request)."""
    try:
        if not get_redis().set(f"triage:dashboard:refreshing:{scope}", "1", nx=True, ex=REFRESH_LOCK_SECONDS):
            return False
        enqueue_dashboard_refresh(scope)
        return True
    except redis.RedisError as exc:
        log.warning("dashboard refresh not requested: %s", exc)
        return False


def scopes() -> dict[str, User]:
    """Every scope with a dashboard: everything, and each active manager's team."""
    managers = db.session.scalars(select(User).where(User.role == "manager", User.active.is_(True))).all()
    everyone = User(email="dashboard@triage.internal", role="csops", active=True)
    return {ALL: everyone, **{scope_of(m): m for m in managers}}


@contextmanager
def acting_as(user: User) -> Iterator[None]:
    """A request context signed in as `user`, so the scoping helpers (app.admin.access) apply.
    A fresh app context: nothing cached in `g` leaks from one scope to the next."""
    app = cast("LocalProxy[Flask]", current_app)._get_current_object()  # Flask types the proxy as the app
    with app.app_context(), app.test_request_context():
        login_user(user)
        yield


def refresh(scope: str | None = None, now: datetime | None = None) -> list[str]:
    """Compute and store the snapshot of `scope` (every scope when None); returns the scopes done."""
    now = now or datetime.now(UTC)
    targets = scopes()
    if scope is not None:
        targets = {scope: targets[scope]} if scope in targets else {}
    for name, user in targets.items():
        with acting_as(user):
            store(name, compute(now, load(name)))
        try:
            get_redis().delete(f"triage:dashboard:refreshing:{name}")
        except redis.RedisError:
            pass
    return list(targets)
