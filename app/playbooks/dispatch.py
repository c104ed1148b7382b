"""Jobs a transaction wants run, enqueued only once it has committed.

A job enqueued before commit could run before its rows exist, or for rows that a
rollback then removes. Code that starts automated work calls `after_commit(...)`;
the session hook enqueues on commit and forgets on rollback. If Redis is down at that
moment nothing is lost: the sweeper (workers/jobs.py) finds queued steps never enqueued.
"""
from __future__ import annotations

import logging

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
KEY = "triage_after_commit"


def after_commit(session: Session, kind: str, ident: int, timeout: int | None = None) -> None:
    """Enqueue job `kind` for `ident` once the session commits; `timeout` in seconds (None: default)."""
    session.info.setdefault(KEY, []).append((kind, ident, timeout))


@event.listens_for(Session, "after_commit")
def _enqueue(session: Session) -> None:
    pending = session.info.pop(KEY, [])
    if not pending:
        return
    from workers.jobs import enqueue_step_jobs

    step_ids = [ident for kind, ident, _ in pending if kind == "step"]
    timeouts = {ident: timeout for kind, ident, timeout in pending if kind == "step" and timeout}
    try:
        enqueue_step_jobs(step_ids, timeouts)
    except Exception as exc:  # Redis down: the sweeper enqueues them later
        log.warning("could not enqueue %d step(s) now (%s); the sweeper will", len(step_ids), exc)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(KEY, None)
