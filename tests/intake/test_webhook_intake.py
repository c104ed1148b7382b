"""CRM webhook intake: every answer of CONTRACT.md section 4, and nothing stored on a refusal."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from app.models import Event
from tests.helpers import TEST_SECRET, early_in_a_rate_window, health_webhook, signed_headers, unprocessed


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_signed_webhook_is_stored_unprocessed_before_202(client, db, post_webhook):
    response = post_webhook(health_webhook(to="RED"), msg_id="msg_1")
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 1, "duplicates": 0}
    event = db.session.execute(select(Event)).scalar_one()
    assert (event.source, event.external_id, event.type, event.account_id) == (
        "crm",
        "msg_1",
        "account.health_changed",
        "acme",
    )
    assert event.payload["health"]["to"] == "RED"  # the raw event, as sent
    assert event.processed_at is None and unprocessed(db.session) == 1


def test_same_webhook_id_twice_is_a_duplicate(client, db, post_webhook):
    assert post_webhook(health_webhook(), msg_id="msg_dup").get_json() == {"accepted": 1, "duplicates": 0}
    again = post_webhook(health_webhook(), msg_id="msg_dup")
    assert again.status_code == 202
    assert again.get_json() == {"accepted": 0, "duplicates": 1}
    assert count(db, Event) == 1


def test_signature_failures_are_401_and_store_nothing(client, db):
    body = json.dumps(health_webhook()).encode()
    now = int(time.time())
    cases = {
        "wrong secret": signed_headers(body, secret="whsec_" + "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"),
        "stale": signed_headers(body, timestamp=now - 301),
        "future": signed_headers(body, timestamp=now + 301),
        "tampered": {**signed_headers(body), "webhook-id": "msg_other"},
    }
    missing = signed_headers(body)
    del missing["webhook-signature"]
    cases["missing signature"] = missing
    for name, headers in cases.items():
        response = client.post("/webhooks/crm", data=body, headers=headers)
        assert response.status_code == 401, name
        assert "error" in response.get_json(), name
    assert count(db, Event) == 0


def test_several_signatures_one_valid_is_accepted(client, db):
    body = json.dumps(health_webhook()).encode()
    headers = signed_headers(body)
    headers["webhook-signature"] = "v1,bm9wZQ== " + headers["webhook-signature"]
    assert client.post("/webhooks/crm", data=body, headers=headers).status_code == 202


def test_wrong_content_type_is_415(client, db):
    body = json.dumps(health_webhook()).encode()
    headers = {**signed_headers(body), "Content-Type": "text/plain"}
    response = client.post("/webhooks/crm", data=body, headers=headers)
    assert response.status_code == 415
    assert "Content-Type" in response.get_json()["error"]


def test_body_over_1_mib_is_413(client, db):
    payload = health_webhook()
    payload["health"]["reason"] = "x" * (1024 * 1024 + 10)
    body = json.dumps(payload).encode()
    response = client.post("/webhooks/crm", data=body, headers=signed_headers(body))
    assert response.status_code == 413
    assert count(db, Event) == 0


def test_malformed_json_and_invalid_utf8_are_400(client, db):
    for body in (b'{"type": ', b"\xff\xfe{}"):
        response = client.post("/webhooks/crm", data=body, headers=signed_headers(body))
        assert response.status_code == 400
        assert response.get_json()["error"]


def test_missing_fields_are_400_with_details(client, db, post_webhook):
    payload = health_webhook()
    del payload["occurred_at"]
    del payload["account"]["id"]
    response = post_webhook(payload)
    assert response.status_code == 400
    details = response.get_json()["details"]
    assert "occurred_at" in details
    assert "id" in details["account"]
    response = post_webhook({k: v for k, v in health_webhook().items() if k != "health"})
    assert response.status_code == 400
    assert "health" in response.get_json()["details"]
    assert count(db, Event) == 0


def test_unknown_status_is_400_naming_the_allowed_values(client, db, post_webhook):
    response = post_webhook(health_webhook(to="purple"))
    assert response.status_code == 400
    message = json.dumps(response.get_json()["details"])
    for status in ("green", "yellow", "red", "black"):
        assert status in message


def test_account_updated_needs_no_health(client, db, post_webhook):
    payload = {
        "type": "account.updated",
        "occurred_at": "2026-11-20T10:00:00Z",
        "account": {"id": "acme", "plan": "enterprise"},
    }
    assert post_webhook(payload).status_code == 202


def test_text_and_times_the_database_cannot_hold_are_400_and_store_nothing(client, db):
    """NUL characters and lone surrogates (PostgreSQL refuses both), NaN and Infinity (not JSON),
    and a time with no UTC equivalent: the sender's error, never a 5xx or a 503 to retry."""

    def changed(path: tuple, value) -> dict:
        payload = health_webhook()
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return payload

    cases = {
        "NUL in the account id": changed(("account", "id"), "ac\u0000me"),
        "NUL in the reason": changed(("health", "reason"), "bad\u0000"),
        "lone surrogate in the id": changed(("account", "id"), "ac\ud800me"),
        "lone surrogate in the name": changed(("account", "name"), "A\udfffcme"),
        "NUL in a contact's name": changed(("account", "contacts"), [{"name": "J\u0000", "email": "j@acme.example"}]),
        "time before year 1 in UTC": changed(("occurred_at",), "0001-01-01T00:00:00+01:00"),
    }
    for what, payload in cases.items():
        # json.dumps escapes them (\u0000, \ud800): the body is valid UTF-8, as a sender's would be.
        body = json.dumps(payload).encode()
        response = client.post("/webhooks/crm", data=body, headers=signed_headers(body))
        assert response.status_code == 400, (what, response.status_code, response.get_json())
        assert "error" in response.get_json(), what
    for literal in (b"NaN", b"Infinity", b"1e400"):
        body = json.dumps(health_webhook()).replace('"reason"', f'"score": {literal.decode()}, "reason"', 1).encode()
        response = client.post("/webhooks/crm", data=body, headers=signed_headers(body))
        assert response.status_code == 400, (literal, response.status_code)
    assert db.session.scalar(select(func.count(Event.id))) == 0


def test_database_down_is_503_with_retry_after(tmp_path, redis_url):
    from app import create_app

    # A database of our own that is not there (a closed port); the machine's stays untouched.
    broken = create_app(
        {
            "TESTING": True,
            "CRM_WEBHOOK_SECRET": TEST_SECRET,
            "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://postgres@127.0.0.1:9/none",
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
        }
    )
    body = json.dumps(health_webhook()).encode()
    response = broken.test_client().post("/webhooks/crm", data=body, headers=signed_headers(body))
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert "error" in response.get_json()


def test_webhooks_are_rate_limited_with_retry_after(client, db, app, post_webhook):
    previous = app.config["RATE_LIMIT_WEBHOOKS"]
    app.config["RATE_LIMIT_WEBHOOKS"] = "3/60"
    early_in_a_rate_window()
    try:
        answers = [post_webhook(health_webhook(account_id=f"rl-{i}")).status_code for i in range(4)]
        assert answers == [202, 202, 202, 429]
        limited = post_webhook(health_webhook(account_id="rl-x"))
        assert limited.status_code == 429
        assert 0 < int(limited.headers["Retry-After"]) <= 60
        assert "too many requests" in limited.get_json()["error"]
    finally:
        app.config["RATE_LIMIT_WEBHOOKS"] = previous
    assert count(db, Event) == 3


@pytest.mark.parametrize("trusted", [0, 1])
def test_behind_a_trusted_proxy_the_limit_counts_per_client_and_never_per_forged_header(db, trusted):
    """With TRUSTED_PROXIES=1 (nginx in front) each client has its own bucket, from the proxy's
    X-Forwarded-For; without it the header is ignored, so a client cannot pick a fresh address."""
    from app import create_app

    proxied = create_app({"TESTING": True, "TRUSTED_PROXIES": trusted, "RATE_LIMIT_WEBHOOKS": "2/60"})
    client = proxied.test_client()
    early_in_a_rate_window()

    def post(address):
        body = json.dumps(health_webhook(account_id=f"px-{address}")).encode()
        return client.post(
            "/webhooks/crm",
            data=body,
            headers={**signed_headers(body), "X-Forwarded-For": address},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        ).status_code  # the proxy's own address

    answers = [post(address) for address in ("203.0.113.1", "203.0.113.1", "203.0.113.1", "198.51.100.7")]
    assert answers == ([202, 202, 429, 202] if trusted else [202, 202, 429, 429])
