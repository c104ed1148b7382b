"""The API's building blocks: the blueprint, parser and Api classes every API module uses.

flask-smorest writes the OpenAPI document at /api/v1/openapi.json from the views'
schemas. Two of its defaults are bent to the contract: errors are `{"error", "details"}`
(not smorest's `{"code", "status", "message"}`), and invalid parameters are 400 (not 422).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Never

from flask.typing import ResponseReturnValue
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from app.api.schemas import ErrorSchema
from app.errors import ApiError, error_response, is_machine_request
from app.intake.event_validation import MAX_INT32, text_problem

# status -> (response component, description, documented headers)
ERROR_RESPONSES = {
    400: ("BadRequest", "Malformed JSON, or a missing or invalid parameter or field", {}),
    401: (
        "Unauthorized",
        "Missing or wrong bearer token",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    ),
    403: ("Forbidden", "A personal API token where a service token is required", {}),
    404: ("NotFound", "No such object", {}),
    409: ("Conflict", "The object is not in a state that allows this", {}),
    503: (
        "ServiceUnavailable",
        "The database is unavailable; retry later",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}},
    ),
    413: ("TooLarge", "The body is larger than 1 MiB", {}),
    415: ("UnsupportedMediaType", "Wrong Content-Type", {}),
    429: (
        "TooManyRequests",
        "Too many requests from this token; retry later",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}},
    ),
}
LOCATION_MESSAGES = {"query": "invalid query parameter", "json": "invalid request body"}
# What smorest's view decorators (arguments, response, alt_response) are.
ViewDecorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class ApiParser(FlaskParser):
    """webargs parser answering in the contract's shape: 400 `{"error", "details": {field: [...]}}`."""

    DEFAULT_VALIDATION_STATUS = 400

    def handle_error(self, error, req, schema, *, error_status_code, error_headers) -> Never:
        messages = error.messages
        # webargs keys the messages by location ({"query": {...}}); clients want the fields.
        if isinstance(messages, dict) and len(messages) == 1:
            location, inner = next(iter(messages.items()))
            if location in self.__location_map__ and isinstance(inner, dict):
                raise ApiError(400, LOCATION_MESSAGES.get(location, "invalid request"), details=inner)
        raise ApiError(400, "invalid request", details=messages if isinstance(messages, dict) else None)

    def _handle_invalid_json_error(self, error, req, *args, **kwargs):
        raise ApiError(400, "malformed JSON body")

    def _raw_load_json(self, req):
        # A body in another format would otherwise be ignored and read as "no fields".
        if not is_json_request(req) and req.get_data(cache=True):
            raise ApiError(415, "send the body as application/json")
        if not is_json_request(req):
            return core.missing
        return super()._raw_load_json(req)


def _path_value_stored(value) -> bool:
    """Could a row have this id? Ids are 32-bit integers or text without NUL on PostgreSQL."""
    if isinstance(value, int):
        return 0 <= value <= MAX_INT32
    return not (isinstance(value, str) and text_problem(value))


def _unknown_unless_storable(view):
    """404 for a path id no row can have, before the view's query fails on it.

    Without this, PostgreSQL refuses `/accounts/a%00b` (NUL in text) and `/tasks/2147483648/...`
    (integer out of range) and the client gets a 503 "retry later" for a request that cannot
    succeed; SQLite cannot even bind an id past 2**63 - 1 (500). The check runs inside the
    view, so the token is still checked first (blueprint before_request).
    """

    @wraps(view)
    def wrapper(*args, **kwargs):
        for name, value in kwargs.items():
            if not _path_value_stored(value):
                raise ApiError(404, f"no {name.removesuffix('_id')} {value!r}")
        return view(*args, **kwargs)

    return wrapper


class ApiBlueprint(SmorestBlueprint):
    ARGUMENTS_PARSER = ApiParser()

    def add_url_rule(self, rule: str, endpoint=None, view_func=None, provide_automatic_options=None, **options) -> None:
        if view_func is not None and "<" in rule and not isinstance(view_func, type):
            view_func = _unknown_unless_storable(view_func)
        return super().add_url_rule(rule, endpoint, view_func, provide_automatic_options, **options)

    def arguments(self, schema, *, location: str = "json", **kwargs) -> ViewDecorator:
        """smorest's, plus the 415 that ApiParser answers to a body that is not JSON."""
        decorator = super().arguments(schema, location=location, **kwargs)
        if location != "json":
            return decorator

        def with_415(func):
            return self.alt_response(415, response=ERROR_RESPONSES[415][0])(decorator(func))

        return with_415

    def errors(self, *codes: int) -> ViewDecorator:
        """Document the contract's error responses of a view (400/401/404/409/503)."""

        def decorator(func):
            for code in codes:
                func = self.alt_response(code, response=ERROR_RESPONSES[code][0])(func)
            return func

        return decorator


class TriageApi(Api):
    ERROR_SCHEMA = ErrorSchema
    # No catch-all "default" response: every status an operation answers is listed, so a
    # client (and tests/api/test_api_fuzz.py) can tell a documented answer from a surprise.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException) -> ResponseReturnValue:
        """Contract JSON on machine paths, Werkzeug's HTML pages elsewhere; headers kept.

        smorest registers this for the whole app, replacing app/errors.py's handler,
        and its own version drops Werkzeug's headers (Allow on 405, Retry-After on 429).
        """
        if not is_machine_request():
            return error
        if error.response is not None:  # abort(response): already a full answer
            return error.response
        headers = {key: value for key, value in error.get_headers() if key.lower() != "content-type"}
        data = getattr(error, "data", None) or {}  # set by flask_smorest.abort(..., message=...)
        headers.update(data.get("headers") or {})
        details = data.get("errors") or data.get("messages")
        return error_response(
            error.code or 500,
            data.get("message") or error.description or error.name,
            details if isinstance(details, dict) else None,
            headers,
        )
