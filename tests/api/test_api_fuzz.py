"""Fuzz the API from its own OpenAPI document (issue 7): no 5xx, every answer as documented.

schemathesis reads /api/v1/openapi.json from the Flask app (WSGI, no server) and sends valid
and invalid requests to every operation in it, POST /api/v1/events included. Every answer is
checked against the document: never a 5xx, a status the operation lists, the documented
Content-Type, headers and body schema for that status.

The rows are made by the real pipeline (signed CRM webhooks and usage events, processed by a
real RQ worker), and half of the generated path ids are swapped for ids that exist, so the
GETs answer 200 with real rows and not only 404, and tasks get completed (then 409).
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from app.models import Account, PlaybookRun, Task
from tests.helpers import TEST_TOKEN, health_webhook

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Bounded and reproducible: the same requests on every run, so CI fails (or not) the same way.
# No example database: derandomized runs do not need one, and it would write .hypothesis/.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


def usage(event_id: str, account_id: str, day: int, active: int) -> dict:
    return {
        "id": event_id,
        "account_id": account_id,
        "type": "usage.daily",
        "occurred_at": f"2026-11-{day:02d}T00:00:00Z",
        "properties": {"active_users": active, "logins": active * 2, "features": {"reporting": day}},
    }


@pytest.fixture
def seeded(client, db, post_webhook, run_jobs):
    """Accounts, health history, runs with steps, tasks and scores, made the way production makes them."""
    assert post_webhook(health_webhook("acme", "red")).status_code == 202
    assert post_webhook(health_webhook("globex", "yellow", occurred_at="2026-11-21T09:30:00Z")).status_code == 202
    events = [
        usage(f"u-{account}-{day}", account, day, active)
        for account, active in (("acme", 40), ("initech", 5))
        for day in range(1, 6)
    ]
    events.append(
        {
            "id": "nps-1",
            "account_id": "initech",
            "type": "feedback.nps",
            "occurred_at": "2026-11-06T12:00:00Z",
            "properties": {"score": 3},
        }
    )
    response = client.post(
        "/api/v1/events", data=json.dumps(events), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status_code == 202
    run_jobs()
    accounts = db.session.scalars(select(Account.id).order_by(Account.id)).all()
    tasks = db.session.scalars(select(Task.id).where(Task.status == "open").order_by(Task.id)).all()
    # The fuzz is only worth something if the GETs have rows to answer with.
    assert {"acme", "globex", "initech"} <= set(accounts)
    assert tasks and db.session.scalar(select(PlaybookRun.id).limit(1)) is not None
    return {"account_id": accounts, "task_id": tasks}


@pytest.fixture
def api_schema(app, seeded):
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=AUTH)
    # The token is sent on every call (or on none, below): no budget spent on generated tokens.
    loaded.config.generation.update(with_security_parameters=False)

    @loaded.hook
    def flatmap_path_parameters(context, path_parameters):
        """Half of the time, the generated ids are replaced by ids that exist."""
        real = {name: st.sampled_from(seeded[name]) for name in path_parameters or {} if name in seeded}
        if not real:
            return st.just(path_parameters)
        return st.just(path_parameters) | st.fixed_dictionaries({**path_parameters, **real})

    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@FUZZ
def test_every_answer_with_the_token_matches_the_document(case):
    case.call_and_validate(headers=AUTH, checks=CHECKS)


def routed(app, case) -> bool:
    """Does the URL match a route? Routing answers before the token is looked at."""
    from werkzeug.exceptions import HTTPException

    try:
        app.url_map.bind("localhost").match(case.formatted_path, case.method.upper())
    except HTTPException:
        return False
    return True


@schema.parametrize()
@settings(FUZZ, max_examples=10)
def test_without_the_token_every_operation_answers_401_as_documented(case, app):
    response = case.call_and_validate(checks=CHECKS)
    if case.method.upper() == case.operation.method.upper() and not routed(app, case):
        # A path value the route's converter refuses (task id "-1" or "x"): no such URL.
        assert response.status_code == 404, (case.operation.label, case.formatted_path, response.status_code)
    elif case.method.upper() != case.operation.method.upper():
        # The coverage phase also probes methods a path does not have: routing answers 405,
        # and OPTIONS lists the methods (under /api/v1 only with the token).
        expected = 405 if case.method.upper() != "OPTIONS" else 200 if case.path == "/healthz" else 401
        assert response.status_code == expected, (case.method, case.path, response.status_code)
    elif case.operation.path == "/healthz":  # the one operation without a token (CONTRACT section 5)
        assert response.status_code == 200
    else:
        assert response.status_code == 401, (case.operation.label, response.status_code)
        assert response.headers["www-authenticate"][0].startswith("Bearer")


def event(**fields) -> dict:
    return {
        "id": "evt-hostile",
        "account_id": "acme",
        "type": "usage.daily",
        "occurred_at": "2026-11-20T00:00:00Z",
        "properties": {"active_users": 1, "logins": 1},
        **fields,
    }


# Inputs that answered 5xx before (found by this fuzzer and by probing around what it found),
# kept as explicit cases so every run sends them. (operation, Case arguments, status, field).
# On PostgreSQL a NUL in text, or an id past 32 bits, failed the query and was answered 503
# "retry later"; a time with no UTC equivalent, an offset past 64 bits, or a lone surrogate
# raised (500) on both databases.
NUL = "a\x00b"
FOUND = [
    ("GET /api/v1/accounts/{account_id}", {"path_parameters": {"account_id": NUL}}, 404, None),
    ("GET /api/v1/accounts/{account_id}/runs", {"path_parameters": {"account_id": NUL}}, 404, None),
    ("GET /api/v1/tasks", {"query": {"account": NUL}}, 400, "account"),
    ("GET /api/v1/tasks", {"query": {"assignee": NUL}}, 400, "assignee"),
    ("GET /api/v1/tasks", {"query": {"offset": 2**63}}, 400, "offset"),
    (
        "GET /api/v1/accounts/{account_id}/scores",
        {"path_parameters": {"account_id": "acme"}, "query": {"since": "0001-01-01T00:00:00+01:00"}},
        400,
        "since",
    ),
    (
        "GET /api/v1/accounts/{account_id}/scores",
        {"path_parameters": {"account_id": "acme"}, "query": {"until": "9999-12-31T23:59:59-01:00"}},
        400,
        "until",
    ),
    ("POST /api/v1/tasks/{task_id}/complete", {"path_parameters": {"task_id": 2**31}, "body": {}}, 404, None),
    ("POST /api/v1/tasks/{task_id}/complete", {"path_parameters": {"task_id": 2**70}, "body": {}}, 404, None),
    ("POST /api/v1/tasks/{task_id}/complete", {"body": {"note": NUL}}, 400, "note"),
    ("POST /api/v1/tasks/{task_id}/complete", {"body": {"note": "\ud800"}}, 400, "note"),
    ("POST /api/v1/events", {"body": event(id=NUL)}, 400, "id"),
    ("POST /api/v1/events", {"body": [event(account_id="\ud800")]}, 400, "account_id"),
    ("POST /api/v1/events", {"body": event(occurred_at="0001-01-01T00:00:00+01:00")}, 400, "occurred_at"),
    ("POST /api/v1/events", {"body": event(type="billing.invoice", properties={"memo": [NUL]})}, 400, "properties"),
    # Accepted (202) before, then never processed on PostgreSQL: the rollup's column is 32-bit.
    ("POST /api/v1/events", {"body": event(properties={"active_users": 2**31, "logins": 1})}, 400, "properties"),
    # Python's json reads 1e400 as inf (and NaN as nan), which JSONB refuses.
    (
        "POST /api/v1/events",
        {
            "body": '{"id": "e", "account_id": "a", "type": "a.b", '
            '"occurred_at": "2026-11-20T00:00:00Z", "properties": {"x": 1e400}}'
        },
        400,
        "properties",
    ),
]


def test_inputs_that_once_failed_are_answered_as_documented(api_schema, seeded, client, subtests):
    for label, arguments, status, field in FOUND:
        with subtests.test(msg=label, arguments=repr(arguments)):
            method, path = label.split(" ", 1)
            operation = api_schema[path][method]
            if "task_id" in path and "path_parameters" not in arguments:
                arguments = {**arguments, "path_parameters": {"task_id": seeded["task_id"][0]}}
            case = operation.Case(media_type="application/json" if method == "POST" else None, **arguments)
            if isinstance(case.body, str):  # JSON no encoder writes: sent as is, the answer checked the same
                raw = client.post(
                    case.formatted_path, data=case.body, headers={**AUTH, "Content-Type": "application/json"}
                )
                case.validate_response(raw, checks=CHECKS)
                status_code, body = raw.status_code, raw.get_json()
            else:
                response = case.call_and_validate(headers=AUTH, checks=CHECKS)
                status_code, body = response.status_code, response.json()
            assert status_code == status
            if field:  # the 400 names the field (in a batch, under the item's index)
                details = body["details"]
                assert field in (details["0"] if path == "/api/v1/events" else details)


def test_a_batch_sent_twice_counts_duplicates_as_documented(api_schema, subtests):
    operation = api_schema["/api/v1/events"]["POST"]
    batch = [event(id="dup-1"), event(id="dup-2"), event(id="dup-1")]
    for expected in ({"accepted": 2, "duplicates": 1}, {"accepted": 0, "duplicates": 3}):
        with subtests.test(msg=str(expected)):
            response = operation.Case(body=batch, media_type="application/json").call_and_validate(
                headers=AUTH, checks=CHECKS
            )
            assert response.status_code == 202 and response.json() == expected


def test_the_document_itself_answers_as_it_documents(api_schema):
    # schemathesis leaves out the operation its document was loaded from: checked here instead.
    operation = api_schema["/api/v1/openapi.json"]["GET"]
    for headers, status in ((AUTH, 200), ({}, 401)):
        response = operation.Case().call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == status
    assert set(response.json()) == {"error"}
