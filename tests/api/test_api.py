"""The read and act API (CONTRACT.md section 5), against the real database and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from app.models import Account, Event, HealthChange, PlaybookRun, RunStep, Task

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)

ACCOUNT_PATHS = [
    "/api/v1/accounts/acme",
    "/api/v1/accounts/acme/health-history",
    "/api/v1/accounts/acme/runs",
    "/api/v1/accounts/acme/scores",
]
SECTION_5_PATHS = {
    "/api/v1/accounts/{account_id}",
    "/api/v1/accounts/{account_id}/health-history",
    "/api/v1/accounts/{account_id}/runs",
    "/api/v1/accounts/{account_id}/scores",
    "/api/v1/tasks",
    "/api/v1/tasks/{task_id}/complete",
    "/api/v1/openapi.json",
    "/healthz",
}


def at(minutes: int = 0) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def add(db, *rows):
    db.session.add_all(rows)
    db.session.commit()
    return rows[0] if len(rows) == 1 else rows


def make_account(db, account_id="acme", **fields):
    values = dict(
        name="Acme GmbH",
        segment="enterprise",
        lifecycle_stage="adoption",
        csm="ana@vendor.example",
        health_status="red",
        health_since=T0,
        health_reason="Translation quality issues",
        score=42,
    )
    values.update(fields)
    return add(db, Account(id=account_id, **values))


def make_event(db, external_id="msg_1", account_id="acme", occurred_at=T0):
    return add(
        db,
        Event(
            source="crm",
            external_id=external_id,
            type="account.health_changed",
            account_id=account_id,
            occurred_at=occurred_at,
            payload={},
        ),
    )


def make_task(db, title="Call the customer", account_id="acme", **fields):
    return add(db, Task(account_id=account_id, title=title, **fields))


@pytest.fixture
def count_queries(db):
    """Count the SQL statements run inside a `with` block."""

    class Counter:
        def __init__(self):
            self.count = 0

        def __enter__(self):
            event.listen(db.engine, "before_cursor_execute", self._count)
            return self

        def __exit__(self, *exc):
            event.remove(db.engine, "before_cursor_execute", self._count)

        def _count(self, *args, **kwargs):
            self.count += 1

    return Counter


# ---- authentication and errors -------------------------------------------------------


@pytest.mark.parametrize("path", ACCOUNT_PATHS + ["/api/v1/tasks"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic dGVzdDp0ZXN0", "Bearer "])
def test_a_valid_bearer_token_is_required(client, db, path, authorization):
    make_account(db)
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert set(response.get_json()) == {"error"}


def test_complete_requires_a_token_too(client, db):
    make_account(db)
    task = make_task(db, outcomes=["done"])
    response = client.post(f"/api/v1/tasks/{task.id}/complete", json={})
    assert response.status_code == 401
    assert db.session.get(Task, task.id).status == "open"


def test_405_keeps_the_allow_header_and_the_json_shape(client, auth):
    response = client.delete("/api/v1/tasks", headers=auth)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.is_json and "error" in response.get_json()


def test_unknown_api_path_is_json_404(client, auth):
    response = client.get("/api/v1/nothing-here", headers=auth)
    assert response.status_code == 404
    assert response.is_json and "error" in response.get_json()


def test_html_pages_keep_html_errors(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


@pytest.mark.parametrize("path", ACCOUNT_PATHS)
def test_unknown_account_is_json_404(client, db, auth, path):
    response = client.get(path.replace("acme", "nobody"), headers=auth)
    assert response.status_code == 404
    assert "nobody" in response.get_json()["error"]


# ---- accounts -----------------------------------------------------------------------------


def test_account_shape(client, db, auth):
    make_account(db)
    make_account(db, "other")
    for status in ("open", "snoozed", "done", "cancelled"):
        make_task(db, status=status)
    make_task(db, account_id="other")

    response = client.get("/api/v1/accounts/acme", headers=auth)

    assert response.status_code == 200
    assert response.get_json() == {
        "id": "acme",
        "name": "Acme GmbH",
        "segment": "enterprise",
        "lifecycle_stage": "adoption",
        "csm": "ana@vendor.example",
        "health": {"status": "red", "since": "2026-11-20T10:00:00Z", "reason": "Translation quality issues"},
        "score": 42,
        "open_tasks": 2,
    }


def test_account_without_health_yet(client, db, auth):
    make_account(db, health_status=None, health_since=None, health_reason=None, score=None)
    body = client.get("/api/v1/accounts/acme", headers=auth).get_json()
    assert body["health"] == {"status": None, "since": None, "reason": None}
    assert body["score"] is None and body["open_tasks"] == 0


def test_health_history_newest_first(client, db, auth):
    make_account(db)
    make_account(db, "other")
    add(
        db,
        HealthChange(
            account_id="acme",
            status="yellow",
            previous="green",
            at=at(0),
            reason="meh",
            changed_by="ana@vendor.example",
            source="crm",
        ),
        HealthChange(
            account_id="acme",
            status="red",
            previous="yellow",
            crm_from="green",
            at=at(60),
            reason="Translation quality issues",
            changed_by="ana@vendor.example",
            source="crm",
        ),
        HealthChange(account_id="acme", status="green", previous=None, at=at(-60), source="crm"),
        HealthChange(account_id="other", status="black", at=at(30), source="crm"),
    )

    response = client.get("/api/v1/accounts/acme/health-history", headers=auth)

    assert response.status_code == 200
    history = response.get_json()
    assert [h["status"] for h in history] == ["red", "yellow", "green"]
    assert history[0] == {
        "status": "red",
        "previous": "yellow",
        "at": iso(at(60)),
        "reason": "Translation quality issues",
        "changed_by": "ana@vendor.example",
        "source": "crm",
    }


def test_runs_newest_first_with_steps_and_the_senders_event_id(client, db, auth):
    make_account(db)
    trigger = make_event(db, external_id="msg_2kX9")
    older = add(
        db,
        PlaybookRun(
            playbook="yellow",
            playbook_version="v1",
            account_id="acme",
            rule="went-yellow",
            status="completed",
            started_at=at(0),
            finished_at=at(5),
        ),
    )
    newer = add(
        db,
        PlaybookRun(
            playbook="red",
            playbook_version="v1",
            account_id="acme",
            rule="went-red",
            trigger_event_id=trigger.id,
            triggered_at=T0,
            status="waiting",
            started_at=at(10),
        ),
    )
    add(
        db,
        RunStep(run_id=newer.id, name="mail-csm", position=1, kind="action", action="email", status="succeeded"),
        RunStep(
            run_id=newer.id,
            name="action-plan",
            position=2,
            kind="task",
            status="open",
            assignee="ana@vendor.example",
            due_at=at(60 * 24),
        ),
        RunStep(run_id=older.id, name="find-out-why", position=1, kind="task", status="done", outcome="done"),
    )

    response = client.get("/api/v1/accounts/acme/runs", headers=auth)

    assert response.status_code == 200
    runs = response.get_json()
    assert [r["id"] for r in runs] == [newer.id, older.id]
    assert runs[0] == {
        "id": newer.id,
        "playbook": "red",
        "rule": "went-red",
        "trigger_event_id": "msg_2kX9",
        "triggered_at": "2026-11-20T10:00:00Z",
        "status": "waiting",
        "started_at": iso(at(10)),
        "finished_at": None,
        "steps": [
            {
                "name": "mail-csm",
                "kind": "action",
                "status": "succeeded",
                "assignee": None,
                "due_at": None,
                "outcome": None,
            },
            {
                "name": "action-plan",
                "kind": "task",
                "status": "open",
                "assignee": "ana@vendor.example",
                "due_at": "2026-11-21T10:00:00Z",
                "outcome": None,
            },
        ],
    }
    assert runs[1]["trigger_event_id"] is None and runs[1]["finished_at"] == iso(at(5))


def test_runs_take_a_fixed_number_of_queries(client, db, auth, count_queries):
    make_account(db)

    def add_run(n):
        trigger = make_event(db, external_id=f"msg_{n}")
        run = add(
            db,
            PlaybookRun(
                playbook="red", playbook_version="v1", account_id="acme", trigger_event_id=trigger.id, started_at=at(n)
            ),
        )
        add(
            db,
            RunStep(run_id=run.id, name="a", position=1, kind="action", status="pending"),
            RunStep(run_id=run.id, name="b", position=2, kind="task", status="open"),
        )

    add_run(1)
    with count_queries() as one_run:
        assert client.get("/api/v1/accounts/acme/runs", headers=auth).status_code == 200
    for n in range(2, 6):
        add_run(n)
    with count_queries() as five_runs:
        assert len(client.get("/api/v1/accounts/acme/runs", headers=auth).get_json()) == 5
    assert five_runs.count == one_run.count


def test_scores_of_an_account_without_usage_are_empty(client, db, auth):
    make_account(db)
    response = client.get("/api/v1/accounts/acme/scores?since=2026-11-01T00:00:00Z&until=2026-11-30", headers=auth)
    assert response.status_code == 200
    assert response.get_json() == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("since=yesterday", "since"),
        ("until=2026-13-45T00:00:00Z", "until"),
        ("since=2026-11-30T00:00:00Z&until=2026-11-01T00:00:00Z", "until"),
    ],
)
def test_scores_reject_bad_times(client, db, auth, query, field):
    make_account(db)
    response = client.get(f"/api/v1/accounts/acme/scores?{query}", headers=auth)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] and field in body["details"]


# ---- tasks --------------------------------------------------------------------------------


def test_tasks_shape_with_why(client, db, auth):
    make_account(db)
    trigger = make_event(db, external_id="msg_abc")
    run = add(db, PlaybookRun(playbook="red", playbook_version="v1", account_id="acme", started_at=T0))
    task = make_task(
        db,
        title="Make an action plan",
        assignee="ana@vendor.example",
        priority="urgent",
        due_at=at(60 * 24),
        created_at=T0,
        run_id=run.id,
        rule="went-red",
        event_id=trigger.id,
    )

    response = client.get("/api/v1/tasks", headers=auth)

    assert response.status_code == 200
    assert response.headers["X-Total-Count"] == "1"
    assert response.get_json() == [
        {
            "id": task.id,
            "account_id": "acme",
            "run_id": run.id,
            "title": "Make an action plan",
            "assignee": "ana@vendor.example",
            "priority": "urgent",
            "status": "open",
            "due_at": "2026-11-21T10:00:00Z",
            "created_at": "2026-11-20T10:00:00Z",
            "outcome": None,
            "why": {"rule": "went-red", "event_id": "msg_abc"},
        }
    ]


def test_tasks_most_urgent_first(client, db, auth):
    make_account(db)
    specs = [  # (title, priority, due in hours or None)
        ("normal-soon", "normal", 1),
        ("urgent-late", "urgent", 48),
        ("high-soon", "high", 1),
        ("urgent-soon", "urgent", 2),
        ("urgent-undated", "urgent", None),
        ("low", "low", 0),
    ]
    for title, priority, hours in specs:
        make_task(db, title=title, priority=priority, due_at=None if hours is None else at(60 * hours))

    titles = [t["title"] for t in client.get("/api/v1/tasks", headers=auth).get_json()]

    assert titles == ["urgent-soon", "urgent-late", "urgent-undated", "high-soon", "normal-soon", "low"]


def test_task_filters(client, db, auth):
    make_account(db)
    make_account(db, "other")
    make_task(db, title="a", assignee="Ana@Vendor.example", priority="high")
    make_task(db, title="b", assignee="mo@vendor.example", priority="urgent", status="snoozed")
    make_task(db, title="c", assignee="ana@vendor.example", priority="low", status="done")
    make_task(db, title="d", assignee="ana@vendor.example", account_id="other", priority="high")

    def titles(query):
        response = client.get(f"/api/v1/tasks?{query}", headers=auth)
        assert response.status_code == 200, response.get_json()
        return sorted(t["title"] for t in response.get_json())

    assert titles("assignee=ana@vendor.example") == ["a", "c", "d"]
    assert titles("status=open") == ["a", "d"]
    assert titles("status=open,Snoozed") == ["a", "b", "d"]
    assert titles("account=other") == ["d"]
    assert titles("priority=high") == ["a", "d"]
    assert titles("priority=urgent,low") == ["b", "c"]
    assert titles("assignee=ana@vendor.example&status=open&account=acme&priority=high") == ["a"]
    assert titles("assignee=nobody@vendor.example") == []


@pytest.mark.parametrize(
    "query, field, allowed",
    [
        ("status=closed", "status", "open, snoozed, done, cancelled"),
        ("status=open,closed", "status", "open, snoozed, done, cancelled"),
        ("priority=critical", "priority", "urgent, high, normal, low"),
    ],
)
def test_tasks_reject_unknown_status_or_priority(client, db, auth, query, field, allowed):
    response = client.get(f"/api/v1/tasks?{query}", headers=auth)
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"]
    assert allowed in " ".join(body["details"][field])


def test_tasks_limit_offset_and_total(client, db, auth):
    make_account(db)
    for n in range(5):
        make_task(db, title=f"t{n}", due_at=at(n))

    response = client.get("/api/v1/tasks?limit=2&offset=1", headers=auth)

    assert response.headers["X-Total-Count"] == "5"
    assert [t["title"] for t in response.get_json()] == ["t1", "t2"]
    for bad in ("limit=0", "limit=1001", "offset=-1", "limit=ten"):
        response = client.get(f"/api/v1/tasks?{bad}", headers=auth)
        assert response.status_code == 400, bad
        assert bad.split("=")[0] in response.get_json()["details"]


# ---- completing a task ----------------------------------------------------------------------


def test_complete_with_an_allowed_outcome(client, db, auth):
    make_account(db)
    trigger = make_event(db, external_id="msg_black")
    task = make_task(
        db, title="Save attempt", outcomes=["saved", "lost"], priority="urgent", rule="went-black", event_id=trigger.id
    )

    response = client.post(
        f"/api/v1/tasks/{task.id}/complete",
        headers=auth,
        json={"outcome": "saved", "note": "They signed for another year"},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == task.id and body["status"] == "done" and body["outcome"] == "saved"
    assert body["why"] == {"rule": "went-black", "event_id": "msg_black"}
    stored = db.session.get(Task, task.id)
    assert stored.note == "They signed for another year" and stored.completed_by == "api"


def test_complete_without_outcome(client, db, auth):
    make_account(db)
    single = make_task(db, outcomes=["done"])
    several = make_task(db, outcomes=["saved", "lost"])

    assert client.post(f"/api/v1/tasks/{single.id}/complete", headers=auth).get_json()["outcome"] == "done"
    response = client.post(f"/api/v1/tasks/{several.id}/complete", headers=auth, json={})
    assert response.status_code == 400
    assert "saved" in response.get_json()["error"] and "lost" in response.get_json()["error"]


def test_complete_errors(client, db, auth):
    make_account(db)
    task = make_task(db, outcomes=["saved", "lost"])
    url = f"/api/v1/tasks/{task.id}/complete"

    wrong = client.post(url, headers=auth, json={"outcome": "won"})
    assert wrong.status_code == 400 and "saved" in wrong.get_json()["error"]
    unknown_field = client.post(url, headers=auth, json={"outcom": "saved"})
    assert unknown_field.status_code == 400 and "outcom" in unknown_field.get_json()["details"]
    malformed = client.post(url, headers={**auth, "Content-Type": "application/json"}, data="{nope")
    assert malformed.status_code == 400 and malformed.get_json()["error"]
    form = client.post(url, headers=auth, data={"outcome": "saved"})
    assert form.status_code == 415
    assert client.post("/api/v1/tasks/999999/complete", headers=auth, json={}).status_code == 404
    assert db.session.get(Task, task.id).status == "open"

    assert client.post(url, headers=auth, json={"outcome": "lost"}).status_code == 200
    again = client.post(url, headers=auth, json={"outcome": "lost"})
    assert again.status_code == 409 and again.get_json()["error"]


# ---- OpenAPI and /healthz --------------------------------------------------------------------


def test_openapi_document(client, auth):
    assert client.get("/api/v1/openapi.json").status_code == 401
    response = client.get("/api/v1/openapi.json", headers=auth)
    assert response.status_code == 200
    spec = response.get_json()
    from openapi_spec_validator import validate

    validate(spec)
    assert spec["openapi"] == "3.0.3" and spec["info"]["title"] == "Triage"

    assert set(spec["paths"]) >= SECTION_5_PATHS
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    error = spec["components"]["schemas"]["Error"]["properties"]
    assert {"error", "details"} <= set(error)
    responses = spec["components"]["responses"]
    complete = spec["paths"]["/api/v1/tasks/{task_id}/complete"]["post"]["responses"]
    for code in ("400", "401", "404", "409", "503"):
        name = complete[code]["$ref"].rsplit("/", 1)[1]
        schema = responses[name]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}
    tasks = spec["paths"]["/api/v1/tasks"]["get"]
    assert {p["name"] for p in tasks["parameters"]} == {"assignee", "status", "account", "priority", "limit", "offset"}
    assert "X-Total-Count" in tasks["responses"]["200"]["headers"]


def test_healthz_without_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_503_when_the_database_is_unreachable(app, tmp_path):
    from app import create_app

    # A real unreachable database: an SQLite file in a folder that does not exist.
    broken = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'x.db'}"})
    client = broken.test_client()

    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "down": ["database"], "database": "down", "redis": "ok"}
    tasks = client.get("/api/v1/tasks", headers={"Authorization": "Bearer test-token-123"})
    assert tasks.status_code == 503
    assert tasks.headers["Retry-After"] and tasks.get_json()["error"]
