"""Personal API tokens: made, listed and revoked with `flask users ...`, stored as a hash, and
scoped as their person is in the admin (a CSM their own work, a manager their team's)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

from sqlalchemy import select, text

from app.models import ApiToken, AuditEntry, Event, HealthChange, Task, User
from app.models.types import utcnow
from tests.helpers import ANA, BEN, MO, NOW, OPS, TEST_TOKEN, account, add, task, team

TOKEN_LINE = re.compile(r"^trg_[A-Za-z0-9_-]{43}$")
SERVICE = {"Authorization": f"Bearer {TEST_TOKEN}"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def make_token(app, email: str, name: str = "laptop") -> str:
    """Through the CLI, as a person gets one; returns the printed token."""
    result = app.test_cli_runner().invoke(args=["users", "token", email, "--name", name])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


def portfolio(db):
    """Ana (Mo's report) owns acme, Ben (another team) owns globex; a task each, and one of Mo's."""
    team(db)
    account(db, "acme", ANA)
    account(db, "globex", BEN)
    return {
        "ana": task(db, "acme", ANA, "Ana's plan"),
        "mo": task(db, "acme", MO, "Mo's plan"),
        "ben": task(db, "globex", BEN, "Ben's plan"),
    }


def titles(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(t["title"] for t in response.get_json())


# -- the CLI and storage ---------------------------------------------------------------------


def test_the_cli_prints_a_token_once_and_stores_only_its_hash(app, web, db):
    team(db)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "token", "ANA@vendor.example", "--name", "laptop"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert TOKEN_LINE.match(token), result.output
    assert "shown once" in result.output

    row = db.session.scalars(select(ApiToken)).one()
    assert row.name == "laptop" and row.user.email == ANA and row.revoked_at is None and row.last_used_at is None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    # Nowhere in the database: every row of every table, as text.
    for table in db.metadata.sorted_tables:
        for values in db.session.execute(table.select()).all():
            assert token not in json.dumps([str(v) for v in values]), table.name
    assert db.session.query(AuditEntry).filter_by(action="api_token.created", object_id=str(row.id)).count() == 1

    second = make_token(app, ANA, "script")
    assert second != token and TOKEN_LINE.match(second)

    listing = runner.invoke(args=["users", "tokens", ANA])
    assert listing.exit_code == 0
    assert "laptop" in listing.output and "script" in listing.output and "never" in listing.output
    assert token not in listing.output and row.token_hash not in listing.output

    assert runner.invoke(args=["users", "token", "nobody@vendor.example"]).exit_code == 1
    assert runner.invoke(args=["users", "tokens", "nobody@vendor.example"]).exit_code == 1
    assert runner.invoke(args=["users", "token", ANA, "--name", " "]).exit_code == 2
    assert "no tokens" in runner.invoke(args=["users", "tokens", BEN]).output


def test_an_inactive_user_gets_no_token_and_their_old_tokens_stop_working(app, web, db):
    portfolio(db)
    token = make_token(app, ANA)
    assert web().get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    ana = db.session.scalars(select(User).where(User.email == ANA)).one()
    ana.active = False
    db.session.commit()
    refused = web().get("/api/v1/tasks", headers=bearer(token))
    assert refused.status_code == 401 and refused.get_json() == {"error": "invalid bearer token"}
    result = app.test_cli_runner().invoke(args=["users", "token", ANA])
    assert result.exit_code == 1 and "inactive" in result.output


def test_a_revoked_token_is_refused_at_once(app, web, db):
    portfolio(db)
    token = make_token(app, ANA)
    keep = make_token(app, ANA, "other")
    assert web().get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    row_id = db.session.scalars(select(ApiToken.id).where(ApiToken.name == "laptop")).one()

    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "revoke-token", str(row_id)])
    assert result.exit_code == 0 and "revoked token" in result.output
    refused = web().get("/api/v1/tasks", headers=bearer(token))
    assert refused.status_code == 401 and refused.get_json() == {"error": "invalid bearer token"}
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert web().get("/api/v1/tasks", headers=bearer(keep)).status_code == 200  # only that one

    assert "revoked already" in runner.invoke(args=["users", "revoke-token", str(row_id)]).output
    assert runner.invoke(args=["users", "revoke-token", "999999"]).exit_code == 1
    assert "revoked" in runner.invoke(args=["users", "tokens", ANA]).output
    db.session.expire_all()
    assert db.session.get(ApiToken, row_id).revoked_at is not None
    assert db.session.query(AuditEntry).filter_by(action="api_token.revoked").count() == 1


def test_last_used_at_is_noted_at_most_once_a_minute(app, web, db):
    portfolio(db)
    token = make_token(app, ANA)
    before = utcnow()
    assert web().get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    db.session.expire_all()
    row = db.session.scalars(select(ApiToken)).one()
    first = row.last_used_at
    assert first is not None and before - timedelta(seconds=1) <= first <= utcnow()

    # A second call within the minute writes nothing: a burst of reads is not a burst of writes.
    assert web().get("/api/v1/tasks", headers=bearer(token)).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).last_used_at == first

    # Once the noted use is older than a minute, the next call notes it again.
    db.session.execute(
        text("UPDATE api_tokens SET last_used_at = :at"), {"at": (first - timedelta(minutes=5)).replace(tzinfo=None)}
    )
    db.session.commit()
    assert web().get("/api/v1/accounts/acme", headers=bearer(token)).status_code == 200
    db.session.expire_all()
    assert db.session.get(ApiToken, row.id).last_used_at >= first
    assert "last used 2" in app.test_cli_runner().invoke(args=["users", "tokens", ANA]).output


def test_wrong_or_malformed_personal_tokens_are_401(app, web, db):
    portfolio(db)
    token = make_token(app, ANA)
    for wrong in (token[:-1] + ("A" if token[-1] != "A" else "B"), "trg_", "trg_" + "x" * 43, token.upper()):
        response = web().get("/api/v1/tasks", headers=bearer(wrong))
        assert response.status_code == 401, wrong
        assert response.get_json() == {"error": "invalid bearer token"}


# -- scope ------------------------------------------------------------------------------------


def test_a_csm_token_lists_only_their_own_tasks(app, web, db):
    portfolio(db)
    task(db, "acme", ANA.upper(), "Ana in capitals")  # CRMs do not agree on case
    token = make_token(app, ANA)
    client = web()
    response = client.get("/api/v1/tasks", headers=bearer(token))
    assert titles(response) == ["Ana in capitals", "Ana's plan"]
    assert response.headers["X-Total-Count"] == "2"
    for query in (f"assignee={BEN}", "account=globex", f"assignee={MO}", "status=open,snoozed&priority=normal"):
        response = web().get(f"/api/v1/tasks?{query}", headers=bearer(token))
        assert "Ben's plan" not in titles(response) and "Mo's plan" not in titles(response), query
    empty = web().get(f"/api/v1/tasks?assignee={BEN}", headers=bearer(token))
    assert empty.get_json() == [] and empty.headers["X-Total-Count"] == "0"
    # The service token still sees everything (CONTRACT section 5).
    assert titles(web().get("/api/v1/tasks", headers=SERVICE)) == [
        "Ana in capitals",
        "Ana's plan",
        "Ben's plan",
        "Mo's plan",
    ]


def test_a_manager_token_sees_the_team_and_ops_see_all(app, web, db):
    portfolio(db)
    assert titles(web().get("/api/v1/tasks", headers=bearer(make_token(app, MO)))) == ["Ana's plan", "Mo's plan"]
    mo = make_token(app, MO, "second")
    assert web().get("/api/v1/accounts/acme", headers=bearer(mo)).status_code == 200
    assert web().get("/api/v1/accounts/globex", headers=bearer(mo)).status_code == 404
    assert titles(web().get("/api/v1/tasks", headers=bearer(make_token(app, OPS)))) == [
        "Ana's plan",
        "Ben's plan",
        "Mo's plan",
    ]


def test_another_teams_account_answers_404_like_a_missing_one(app, web, db):
    portfolio(db)
    add(db, HealthChange(account_id="globex", status="red", previous="green", at=NOW, source="crm"))
    token = make_token(app, ANA)
    for suffix in ("", "/health-history", "/runs", "/scores"):
        mine = web().get(f"/api/v1/accounts/acme{suffix}", headers=bearer(token))
        assert mine.status_code == 200, suffix
        theirs = web().get(f"/api/v1/accounts/globex{suffix}", headers=bearer(token))
        missing = web().get(f"/api/v1/accounts/nowhere{suffix}", headers=bearer(token))
        assert theirs.status_code == missing.status_code == 404, suffix
        # The same words as for an account that does not exist: nothing tells them apart.
        assert theirs.get_json()["error"].replace("globex", "X") == missing.get_json()["error"].replace("nowhere", "X")
        assert web().get(f"/api/v1/accounts/globex{suffix}", headers=SERVICE).status_code == 200


def test_completing_another_csms_task_is_404_and_changes_nothing(app, web, db):
    tasks = portfolio(db)
    token = make_token(app, ANA)
    theirs = web().post(f"/api/v1/tasks/{tasks['ben'].id}/complete", json={"outcome": "done"}, headers=bearer(token))
    missing = web().post("/api/v1/tasks/999999/complete", json={"outcome": "done"}, headers=bearer(token))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_json() == {"error": f"no task {tasks['ben'].id}"}
    db.session.expire_all()
    assert db.session.get(Task, tasks["ben"].id).status == "open"
    assert db.session.query(AuditEntry).count() == 1  # the token's creation only

    mine = web().post(
        f"/api/v1/tasks/{tasks['ana'].id}/complete", json={"outcome": "done", "note": "called"}, headers=bearer(token)
    )
    assert mine.status_code == 200 and mine.get_json()["status"] == "done"
    db.session.expire_all()
    assert db.session.get(Task, tasks["ana"].id).completed_by == ANA  # the person, not "api"
    assert db.session.query(AuditEntry).filter_by(action="task.completed").one().actor == ANA


def test_events_take_service_tokens_only_and_the_openapi_document_any_token(app, web, db):
    portfolio(db)
    token = make_token(app, OPS)  # even CS ops: a person's token does not feed the pipeline
    event = {
        "id": "evt-1",
        "account_id": "acme",
        "type": "usage.daily",
        "occurred_at": "2026-11-20T00:00:00Z",
        "properties": {"active_users": 4, "logins": 9},
    }
    refused = web().post("/api/v1/events", json=[event], headers=bearer(token))
    assert refused.status_code == 403 and set(refused.get_json()) == {"error"}
    assert db.session.query(Event).count() == 0
    assert db.session.scalars(select(ApiToken.last_used_at)).one() is None  # refused: not a use
    document = web().get("/api/v1/openapi.json", headers=bearer(token))
    assert document.status_code == 200 and "403" in document.get_json()["paths"]["/api/v1/events"]["post"]["responses"]
    assert web().post("/api/v1/events", json=[event], headers=SERVICE).status_code == 202
    unknown = web().post("/api/v1/events", json=[event], headers=bearer("trg_" + "y" * 43))
    assert unknown.status_code == 401
