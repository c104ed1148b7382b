"""`GET /healthz`: is the server able to take events? (CONTRACT.md section 5, no token).

Only the database decides the status code: a committed event is never lost even while
Redis is down (the outbox sweeper enqueues it later), so Redis is reported, not required.
"""

from __future__ import annotations

import logging

from sqlalchemy import text

from app.api.base import ApiBlueprint
from app.api.schemas import HealthzSchema
from app.extensions import db
from app.redis_conn import get_redis

log = logging.getLogger(__name__)
blp = ApiBlueprint("Health", __name__, description="Liveness for load balancers and monitors")


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception as exc:  # any failure means "down"; the probe must answer, not raise
        log.warning("healthz: database down: %s", exc.__class__.__name__)
        try:
            db.session.rollback()
        except Exception:  # the session may be unusable too; the answer matters more
            pass
        return False


def _redis_ok() -> bool:
    try:
        return bool(get_redis().ping())
    except Exception as exc:  # connection refused, timeout, embedded server not startable
        log.warning("healthz: redis down: %s", exc.__class__.__name__)
        return False


@blp.route("/healthz")
@blp.doc(security=[])
@blp.response(200, HealthzSchema)
@blp.alt_response(
    503,
    schema=HealthzSchema,
    description="The database is unreachable",
    headers={"Retry-After": {"schema": {"type": "integer"}}},
)
def healthz() -> dict[str, object] | tuple[dict[str, object], int, dict[str, str]]:
    """200 once the database answers; 503 naming what is down otherwise"""
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    body = {name: "ok" if ok else "down" for name, ok in checks.items()}
    if checks["database"]:
        return {"status": "ok", **body}
    down = [name for name, ok in checks.items() if not ok]
    return {"status": "unavailable", "down": down, **body}, 503, {"Retry-After": "5"}
