"""An application context for jobs, one app per worker process.

Inside a test or a worker that already pushed an app context, jobs use it. After a
fork, pooled database connections belong to the parent: drop them (without closing
the parent's sockets), as SQLAlchemy recommends for multiprocessing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, has_app_context

P = ParamSpec("P")
R = TypeVar("R")

_app: Flask | None = None
_pid: int | None = None


def get_app() -> Flask:
    global _app
    if _app is None:
        from app import create_app

        _app = create_app()
    return _app


def with_app(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if has_app_context():
            _forget_parent_connections()
            return _settled(fn, args, kwargs)
        with get_app().app_context():
            _forget_parent_connections()
            return _settled(fn, args, kwargs)

    return wrapper


def _settled(fn: Callable[..., R], args: tuple[Any, ...], kwargs: dict[str, Any]) -> R:
    """Run the job, then end whatever transaction it left open.

    A job commits what it means to keep. The in-process worker keeps one session from job to
    job, so anything still open when a job returns or raises ends here, rolled back: a failed
    job's claim is not committed by the next job (it was: the retry of a failed event found its
    own uncommitted claim, called the event "already processed" and committed it, unapplied;
    tests/workers/test_sweeper.py), and no read-only transaction sits idle between jobs holding a
    snapshot or a lock. After a job that committed, this sends nothing."""
    from app.extensions import db

    try:
        return fn(*args, **kwargs)
    finally:
        db.session.rollback()


def _forget_parent_connections() -> None:
    global _pid
    if _pid != os.getpid():
        from app.extensions import db

        db.engine.dispose(close=False)
        _pid = os.getpid()
