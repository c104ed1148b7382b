"""One JSON error shape for machine clients (CONTRACT.md section 4).

`{"error": "...", "details": {...}}`; 503 with Retry-After when the database is down.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)
MACHINE_PREFIXES = ("/api/", "/webhooks/", "/healthz")


class ApiError(Exception):
    """Raise from a view to answer `{"error": message, "details": details}` with `status`."""

    def __init__(self, status: int, message: str, details: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.details, self.headers = status, message, details, headers or {}


def error_response(status: int, message: str, details: dict | None = None, headers: dict | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def is_machine_request() -> bool:
    return request.path.startswith(MACHINE_PREFIXES)


def init_app(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.details, exc.headers)

    # Only "the database is not there" (connection refused or lost, pool exhausted) is a 503 to
    # retry. Data the database refuses is a bug or bad input: a 503 would hide it and make the
    # sender retry for ever, so it stays a 500 (and the intake checks its input first).
    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def _database_down(exc):
        log.error("database unavailable: %s", exc.__class__.__name__)
        try:
            from app.extensions import db

            db.session.rollback()
        except Exception:  # the session may be unusable too; the response matters more
            pass
        return error_response(503, "database unavailable, retry later", headers={"Retry-After": "5"})

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not is_machine_request():
            return exc
        response = error_response(exc.code or 500, exc.description or exc.name)
        for key, value in exc.get_headers():
            if key.lower() != "content-type":
                response.headers[key] = value
        return response
