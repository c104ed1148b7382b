"""An application context for jobs, one app per worker process.

Inside a test or a worker that already pushed an app context, jobs use it. After a
fork, pooled database connections belong to the parent: drop them (without closing
the parent's sockets), as SQLAlchemy recommends for multiprocessing.
"""
from __future__ import annotations

import functools
import os

from flask import has_app_context

_app = None
_pid = None


def get_app():
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def with_app(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if has_app_context():
            _forget_parent_connections()
            return _rolled_back_on_failure(fn, args, kwargs)
        with get_app().app_context():
            _forget_parent_connections()
            return _rolled_back_on_failure(fn, args, kwargs)

    return wrapper


def _rolled_back_on_failure(fn, args, kwargs):
    """Run the job; if it fails, roll its transaction back before RQ records the failure.

    The in-process worker keeps one session from job to job. Without this, a failed job's
    open transaction (an event's claim above all) would be committed by the next job: the
    retry of a failed event found its own uncommitted claim, called the event "already
    processed" and committed it, unapplied (tests/test_sweeper.py)."""
    try:
        return fn(*args, **kwargs)
    except BaseException:
        from app.extensions import db

        db.session.rollback()
        raise


def _forget_parent_connections() -> None:
    global _pid
    if _pid != os.getpid():
        from app.extensions import db

        db.engine.dispose(close=False)
        _pid = os.getpid()
