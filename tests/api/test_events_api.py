"""POST /api/v1/events (CONTRACT.md sections 3 and 4), on the real database, Redis and RQ."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.models import Account, Event
from app.models.usage import DailyUsage
from tests.helpers import unprocessed


def event(id="evt-1", account_id="acme", type="usage.daily", occurred_at="2026-11-20T00:00:00Z", **properties):
    return {
        "id": id,
        "account_id": account_id,
        "type": type,
        "occurred_at": occurred_at,
        "properties": properties or {"active_users": 41, "logins": 97, "features": {"reporting": 3}},
    }


def post(client, auth, body, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/v1/events", data=data, headers={**auth, "Content-Type": content_type})


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_a_batch_is_stored_unprocessed_then_processed(client, db, auth, run_jobs):
    batch = [event(id=f"evt-{i}", occurred_at=f"2026-11-{10 + i:02d}T00:00:00Z") for i in range(5)]
    response = post(client, auth, batch)
    assert response.status_code == 202
    assert response.get_json() == {"accepted": 5, "duplicates": 0}
    assert count(db, Event) == 5 and unprocessed(db.session) == 5
    run_jobs()
    assert unprocessed(db.session) == 0
    assert db.session.get(Account, "acme") is not None  # unknown accounts are created on first sight
    days = db.session.execute(select(DailyUsage).order_by(DailyUsage.day)).scalars().all()
    assert [d.day.isoformat() for d in days] == [f"2026-11-{10 + i:02d}" for i in range(5)]
    assert days[0].active_users == 41 and days[0].features == {"reporting": 3}


def test_a_single_object_is_accepted(client, db, auth):
    assert post(client, auth, event()).get_json() == {"accepted": 1, "duplicates": 0}


def test_ids_seen_before_or_twice_in_a_batch_are_duplicates(client, db, auth):
    assert post(client, auth, [event(id="a"), event(id="b")]).get_json() == {"accepted": 2, "duplicates": 0}
    response = post(client, auth, [event(id="b"), event(id="c"), event(id="c")])
    assert response.get_json() == {"accepted": 1, "duplicates": 2}
    assert count(db, Event) == 3


def test_one_invalid_item_rejects_the_batch_with_its_index(client, db, auth):
    batch = [event(id="ok"), event(id="bad", type="feedback.nps", score=11), {"id": "x"}]
    response = post(client, auth, batch)
    assert response.status_code == 400
    details = response.get_json()["details"]
    assert set(details) == {"1", "2"}
    assert "score" in details["1"]["properties"]
    assert {"account_id", "type", "occurred_at"} <= set(details["2"])
    assert count(db, Event) == 0


def test_each_defined_type_checks_its_properties(client, db, auth):
    bad = {
        "usage.daily": {"active_users": -1, "logins": 3},
        "usage.feature_used": {},
        "users.added": {"count": 0},
        "seats.changed": {"from": 10},
        "feedback.nps": {"score": "9"},
        "feedback.happiness": {"level": "ecstatic"},
        "support.ticket": {"severity": "critical", "subject": "x"},
    }
    for index, (kind, properties) in enumerate(bad.items()):
        response = post(client, auth, event(id=f"e{index}", type=kind, **properties))
        assert response.status_code == 400, kind
    good = {
        "usage.feature_used": {"feature": "export", "user_id": "u1"},
        "users.added": {"count": 10},
        "seats.changed": {"from": 10, "to": 12},
        "feedback.nps": {"score": 9, "comment": "great"},
        "feedback.happiness": {"level": "very_happy"},
        "support.ticket": {"severity": "urgent", "subject": "Export broken", "body": "Third time this week"},
        "billing.invoice_overdue": {"invoice": "INV-7", "days": 14},
    }
    for index, (kind, properties) in enumerate(good.items()):
        response = post(client, auth, event(id=f"g{index}", type=kind, **properties))
        assert response.status_code == 202, (kind, response.get_json())


def test_a_type_needs_a_dot_and_unknown_fields_are_reported(client, db, auth):
    response = post(client, auth, [dict(event(), type="login"), dict(event(id="z"), colour="red")])
    details = response.get_json()["details"]
    assert "type" in details["0"] and "colour" in details["1"]


def test_auth_size_type_and_json_errors(client, db, auth):
    assert client.post("/api/v1/events", json=event()).status_code == 401
    assert client.post("/api/v1/events", json=event(), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert post(client, auth, json.dumps(event()), content_type="text/plain").status_code == 415
    assert post(client, auth, b"[{").status_code == 400
    assert post(client, auth, []).status_code == 400
    assert post(client, auth, [event(id=f"e{i}") for i in range(1001)]).status_code == 400
    huge = [
        event(id=f"h{i}", type="support.ticket", severity="low", subject="x" * 900, body="y" * 1000) for i in range(600)
    ]
    assert post(client, auth, huge).status_code == 413
    assert count(db, Event) == 0


def test_late_events_update_the_rollup_of_their_day(client, db, auth, run_jobs):
    post(
        client,
        auth,
        [
            event(
                id="t1",
                type="support.ticket",
                occurred_at="2026-11-20T09:00:00Z",
                severity="high",
                subject="Export fails again",
                body="We are really frustrated",
            )
        ],
    )
    run_jobs()
    post(
        client,
        auth,
        [
            event(
                id="t0",
                type="support.ticket",
                occurred_at="2026-11-20T08:00:00Z",
                severity="low",
                subject="Question",
                body="How do I add a user? Thanks, love the product",
            )
        ],
    )
    run_jobs()
    day = db.session.execute(select(DailyUsage)).scalar_one()
    assert (day.tickets, day.tickets_high, day.sentiment_count) == (2, 1, 2)
