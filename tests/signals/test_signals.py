"""Rollups and metrics in event time, through the real events API and RQ workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.signals.indicators import shipped_metric_names
from app.signals.metrics import metrics_for
from app.signals.sentiment import sentiment

START = datetime(2026, 9, 1, tzinfo=UTC)


def daily(account, day, active, logins=None, features=None, **extra):
    return {
        "id": f"{account}-daily-{day}",
        "account_id": account,
        "type": "usage.daily",
        "occurred_at": (START + timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "properties": {
            "active_users": active,
            "logins": logins if logins is not None else active * 2,
            "features": features or {},
            **extra,
        },
    }


def send(client, auth, events):
    for start in range(0, len(events), 500):
        response = client.post("/api/v1/events", json=events[start : start + 500], headers=auth)
        assert response.status_code == 202, response.get_json()


def test_a_decline_in_active_users_over_30_days(client, db, auth, run_jobs):
    # 30 days at 100 active users, then 30 days at 75: a 25% decline.
    send(client, auth, [daily("acme", d, 100 if d < 30 else 75) for d in range(60)])
    run_jobs()
    at = START + timedelta(days=59)
    m = metrics_for("acme", at)
    assert set(m) == set(shipped_metric_names())
    assert (m["active_users_avg_30d"], m["active_users_avg_prev_30d"]) == (75, 100)
    assert m["active_users_change_pct_30d"] == -25.0
    assert m["logins_7d"] == 7 * 150 and m["logins_30d"] == 30 * 150
    # In event time: the same question asked of day 29 sees no decline and no baseline.
    assert metrics_for("acme", START + timedelta(days=29))["active_users_change_pct_30d"] is None


def test_events_out_of_order_give_the_same_metrics(client, db, auth, run_jobs):
    events = [daily("ooo", d, 50 + d) for d in range(60)]
    send(client, auth, list(reversed(events)))
    send(client, auth, [dict(e, id=e["id"].replace("ooo", "ord"), account_id="ord") for e in events])
    run_jobs()
    at = START + timedelta(days=59)
    assert metrics_for("ooo", at) == metrics_for("ord", at)


def test_feedback_support_seats_and_users(client, db, auth, run_jobs):
    at = START + timedelta(days=40)
    stamp = lambda d: (START + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    send(
        client,
        auth,
        [
            {
                "id": "n1",
                "account_id": "fb",
                "type": "feedback.nps",
                "occurred_at": stamp(10),
                "properties": {"score": 4},
            },
            {
                "id": "n2",
                "account_id": "fb",
                "type": "feedback.nps",
                "occurred_at": stamp(20),
                "properties": {"score": 9},
            },
            {
                "id": "h1",
                "account_id": "fb",
                "type": "feedback.happiness",
                "occurred_at": stamp(21),
                "properties": {"level": "not_happy"},
            },
            {
                "id": "u1",
                "account_id": "fb",
                "type": "users.added",
                "occurred_at": stamp(30),
                "properties": {"count": 10},
            },
            {
                "id": "s1",
                "account_id": "fb",
                "type": "seats.changed",
                "occurred_at": stamp(31),
                "properties": {"from": 50, "to": 40},
            },
            {
                "id": "t1",
                "account_id": "fb",
                "type": "support.ticket",
                "occurred_at": stamp(35),
                "properties": {
                    "severity": "urgent",
                    "subject": "Export broken",
                    "body": "Terrible, we are angry and frustrated",
                },
            },
            {
                "id": "f1",
                "account_id": "fb",
                "type": "usage.feature_used",
                "occurred_at": stamp(36),
                "properties": {"feature": "reporting"},
            },
        ],
    )
    run_jobs()
    m = metrics_for("fb", at)
    assert (m["nps_last"], m["days_since_nps"], m["happiness_last"]) == (9, 20, 1)
    assert (m["new_users_30d"], m["seats"], m["tickets_30d"], m["tickets_high_30d"]) == (10, 40, 1, 1)
    assert m["ticket_sentiment_30d"] < -0.5
    assert m["features_used_30d"] == 1
    # Months later, with nothing in the last 60 days: the latest answers are found further back.
    later = metrics_for("fb", START + timedelta(days=140))
    assert (later["nps_last"], later["days_since_nps"], later["happiness_last"], later["seats"]) == (9, 120, 1, 40)
    assert later["tickets_30d"] == 0 and later["active_users_avg_30d"] is None


def test_sentiment_is_offline_and_signed():
    assert sentiment("Thanks, this works great now, we love it") > 0.5
    assert sentiment("This is broken again and we are very frustrated") < -0.5
    assert sentiment("") is None


def test_scores_follow_usage_and_a_band_change_is_an_event(client, db, auth, run_jobs):
    from sqlalchemy import select

    from app.models import Account, Event
    from app.models.score import HealthScore

    # Healthy for 40 days, then active users fall by half: the score drops into another band.
    send(client, auth, [daily("drop", d, 100 if d < 40 else 50) for d in range(70)])
    run_jobs()
    points = (
        db.session.execute(select(HealthScore).where(HealthScore.account_id == "drop").order_by(HealthScore.day))
        .scalars()
        .all()
    )
    assert len(points) == 70
    assert points[35].band == "green" and points[-1].band != "green"
    assert points[-1].score < points[35].score
    assert points[-1].details["active_users_change_pct_30d"]["value"] <= -20
    assert db.session.get(Account, "drop").score == points[-1].score
    changes = db.session.execute(select(Event).where(Event.type == "health.score_band_changed")).scalars().all()
    assert changes and changes[0].payload["properties"]["from"] == "green"
    assert all(change.processed_at is not None for change in changes)

    response = client.get("/api/v1/accounts/drop/scores?since=2026-10-01T00:00:00Z", headers=auth)
    series = response.get_json()
    assert response.status_code == 200 and series[0]["at"] >= "2026-10-01"
    assert [p["score"] for p in series] == [p.score for p in points if p.at.isoformat() >= "2026-10-01"]


def test_a_broken_scorecard_is_reported_with_file_and_line(tmp_path):
    import pytest

    from app.filecheck import FileErrors
    from app.signals.scorecards import load_scorecards

    (tmp_path / "cards.yml").write_text(
        "scorecards:\n  - name: x\n    indicators:\n"
        "      - {metric: active_users, weight: 1, points: [[0, 0], [1, 100]]}\n"
        "    bands: {green: 70, red: 0}\n"
    )
    with pytest.raises(FileErrors) as error:
        load_scorecards(str(tmp_path))
    assert "cards.yml:4:" in str(error.value) and "active_users_change_pct_30d" in str(error.value)


def test_the_daily_recompute_notices_an_account_that_went_silent(client, db, auth, run_jobs):
    from datetime import timedelta

    from app.models import Account
    from app.signals.scores import recompute_all

    send(client, auth, [daily("quiet", d, 80) for d in range(45)])
    send(
        client,
        auth,
        [
            {
                "id": "crm-only-nps",
                "account_id": "crm-only",
                "type": "billing.invoice_overdue",
                "occurred_at": "2026-10-01T00:00:00Z",
                "properties": {"days": 3},
            }
        ],
    )
    run_jobs()
    before = db.session.get(Account, "quiet").score
    result = recompute_all(START + timedelta(days=75))  # a month without a single usage event
    run_jobs()
    db.session.expire_all()
    assert result["accounts"] == 1  # crm-only sends no usage: no score
    assert db.session.get(Account, "quiet").score < before
    assert db.session.get(Account, "crm-only").score is None


def test_a_lasting_disagreement_between_crm_and_score_asks_the_csm_to_review(client, db, auth, run_jobs, post_webhook):
    from datetime import timedelta

    from sqlalchemy import select

    from app.models import Task
    from app.signals.review import review_disagreements
    from tests.helpers import health_webhook

    post_webhook(health_webhook(account_id="rev", to="green", occurred_at="2026-09-01T00:00:00Z"))
    send(client, auth, [daily("rev", d, 100 if d < 30 else 35) for d in range(75)])
    run_jobs()
    assert review_disagreements(START + timedelta(days=40))["launched"] == 0  # not for long enough yet
    assert review_disagreements(START + timedelta(days=76))["launched"] == 1
    assert review_disagreements(START + timedelta(days=77))["launched"] == 0  # one open review at a time
    task = db.session.execute(select(Task).where(Task.title.like("Review the health status%"))).scalar_one()
    assert task.assignee == "ana@vendor.example"
    assert "CRM green" in task.title and "Translation quality issues" in task.instructions
    assert "active users change pct 30d" in task.instructions


def test_scorecards_are_reloaded_when_their_files_change_and_a_broken_change_is_refused(db, tmp_path):
    """Scorecards load with the rules, metrics and playbooks (app/catalog.py): a changed file goes
    live, a broken one is refused and the last good set stays live."""
    import os
    import shutil
    import time as clock

    from app import catalog, create_app
    from tests.helpers import ROOT

    folder = tmp_path / "cards"
    shutil.copytree(ROOT / "scorecards", folder)
    app = create_app({"TESTING": True, "SCORECARDS_DIR": str(folder), "RULES_RELOAD_SECONDS": 0.01})
    with app.app_context():
        first = catalog.current().scorecards.version
        card = folder / "default.yml"
        card.write_text(
            card.read_text().replace(
                "bands: {green: 70, yellow: 45, red: 0}", "bands: {green: 75, yellow: 45, red: 0}", 1
            )
        )
        os.utime(card, (clock.time() + 5, clock.time() + 5))
        clock.sleep(0.02)
        second = catalog.current().scorecards
        assert second.version != first
        card.write_text("scorecards: [ {name: broken")  # a broken edit
        os.utime(card, (clock.time() + 10, clock.time() + 10))
        clock.sleep(0.02)
        assert catalog.current().scorecards.version == second.version  # the last good set stays live
        assert "default.yml" in (catalog.reload_error(app)[0] or "")


def test_a_late_event_corrects_its_day_and_every_later_window_that_includes_it(client, db, auth, run_jobs):
    from sqlalchemy import select

    from app.models.score import HealthScore

    def scores():
        return dict(
            db.session.execute(select(HealthScore.day, HealthScore.score).where(HealthScore.account_id == "late")).all()
        )

    send(client, auth, [daily("late", d, 40) for d in range(40)])
    run_jobs()
    before = scores()
    late = {
        "id": "late-ticket",
        "account_id": "late",
        "type": "support.ticket",
        "occurred_at": (START + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "properties": {"severity": "urgent", "subject": "Everything is broken, we are furious"},
    }
    send(client, auth, [late])
    run_jobs()
    after = scores()
    assert len(after) == len(before) == 40
    changed = sorted(day for day in after if after[day] != before[day])
    assert changed == [(START + timedelta(days=d)).date() for d in range(30, 40)]  # its day and the 9 after
    assert all(after[day] < before[day] for day in changed)
