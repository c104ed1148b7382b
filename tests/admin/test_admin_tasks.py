"""The CSM's task inbox beyond completing: filters, bulk actions, snooze, reassign, comment,
and the account page's health chart."""

from __future__ import annotations

import re
from datetime import UTC, timedelta

from app.models import AuditEntry, HealthChange, PlaybookRun, Task
from tests.helpers import ANA, BEN, NOW, account, add, csrf_from, page_token, signed_in, task, team


def titles(html):
    return re.findall(r'<a href="/admin/task/\d+">([^<]+)</a>', html)


def test_filters_by_playbook_and_due(web, db):
    team(db)
    account(db, "acme", ANA)
    red = add(db, PlaybookRun(playbook="red-plan", playbook_version="v1", account_id="acme", status="waiting"))[0]
    green = add(db, PlaybookRun(playbook="green-review", playbook_version="v1", account_id="acme", status="waiting"))[0]
    task(db, "acme", ANA, "Red late", run_id=red.id, due_at=NOW - timedelta(days=1))
    task(db, "acme", ANA, "Green soon", run_id=green.id, due_at=NOW + timedelta(hours=1))
    task(db, "acme", ANA, "Green later", run_id=green.id, due_at=NOW + timedelta(days=20))
    task(db, "acme", ANA, "No date", due_at=None)
    client = signed_in(web, ANA)
    assert titles(client.get("/admin/task/?flt0_playbook_equals=green-review").get_data(as_text=True)) == [
        "Green soon",
        "Green later",
    ]
    assert titles(client.get("/admin/task/?flt0_due_is=overdue").get_data(as_text=True)) == ["Red late"]
    assert titles(client.get("/admin/task/?flt0_due_is=week").get_data(as_text=True)) == ["Red late", "Green soon"]
    assert titles(client.get("/admin/task/?flt0_due_is=none").get_data(as_text=True)) == ["No date"]


def _action(client, name, ids, **extra):
    token = page_token(client, "/admin/task/")
    data = {"action": name, "rowid": [str(i) for i in ids], "csrf_token": token, "url": "/admin/task/", **extra}
    return client.post("/admin/task/action/", data=data)


def test_bulk_complete_completes_single_outcome_tasks_in_scope_only(web, db):
    team(db)
    account(db, "acme", ANA)
    account(db, "globex", BEN)
    one = task(db, "acme", ANA, "Simple")
    choice = task(db, "acme", ANA, "Needs a choice", outcomes=["saved", "lost"])
    theirs = task(db, "globex", BEN, "Ben's")
    client = signed_in(web, ANA)
    response = _action(client, "complete", [one.id, choice.id, theirs.id])
    assert response.status_code == 302
    flashes = client.get("/admin/task/").get_data(as_text=True)
    assert "Completed: 1 task(s)" in flashes and "1 task(s) left as they are" in flashes
    db.session.expire_all()
    assert [db.session.get(Task, t.id).status for t in (one, choice, theirs)] == ["done", "open", "open"]
    assert db.session.query(AuditEntry).filter_by(action="task.completed", actor=ANA).count() == 1
    # no token: refused
    assert client.post("/admin/task/action/", data={"action": "complete", "rowid": [str(choice.id)]}).status_code == 400


def test_bulk_snooze_with_date_and_reason(web, db):
    team(db)
    account(db, "acme", ANA)
    a, b = task(db, "acme", ANA, "First"), task(db, "acme", ANA, "Second")
    client = signed_in(web, ANA)
    listing = client.get("/admin/task/").get_data(as_text=True)
    assert 'form="action_form"' in listing and 'name="snooze_until"' in listing
    until = (NOW + timedelta(days=10)).date()
    _action(client, "snooze", [a.id, b.id], snooze_until=until.isoformat(), snooze_reason="Customer on holiday")
    assert f"Snoozed until {until.isoformat()}: 2 task(s)" in client.get("/admin/task/").get_data(as_text=True)
    db.session.expire_all()
    first = db.session.get(Task, a.id)
    assert first.status == "snoozed" and first.snooze_reason == "Customer on holiday"
    assert first.snoozed_until.date() == until


def test_snooze_from_the_task_page_needs_a_reason_and_a_future_day(web, db):
    team(db)
    account(db, "acme", ANA)
    mine = task(db, "acme", ANA, "Call Jane")
    client = signed_in(web, ANA)
    url = f"/admin/task/{mine.id}"
    page = client.get(url).get_data(as_text=True)
    assert "snooze-form" in page
    token = csrf_from(page)
    tomorrow = (NOW + timedelta(days=2)).date().isoformat()
    client.post(f"{url}/snooze", data={"until": tomorrow, "reason": "", "csrf_token": token})
    assert "Reason: This field is required" in client.get(url).get_data(as_text=True)
    client.post(f"{url}/snooze", data={"until": "2020-01-01", "reason": "old", "csrf_token": token})
    assert "choose a day in the future" in client.get(url).get_data(as_text=True)
    response = client.post(f"{url}/snooze", data={"until": tomorrow, "reason": "On holiday", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/task/"
    page = client.get(url).get_data(as_text=True)
    assert "Snoozed until" in page and "On holiday" in page and "task.snoozed" in page


def test_reassign_hands_the_task_over_and_the_csm_loses_it(web, db):
    team(db)
    account(db, "acme", ANA)
    mine = task(db, "acme", ANA, "Call Jane")
    client = signed_in(web, ANA)
    url = f"/admin/task/{mine.id}"
    page = client.get(url).get_data(as_text=True)
    assert f'<option value="{BEN}">' in page or f'value="{BEN}"' in page
    token = csrf_from(page)
    assert (
        client.post(f"{url}/reassign", data={"assignee": "stranger@evil.example", "csrf_token": token}).status_code
        == 302
    )
    db.session.expire_all()
    assert db.session.get(Task, mine.id).assignee == ANA  # not a choice
    response = client.post(f"{url}/reassign", data={"assignee": BEN, "csrf_token": token})
    assert response.headers["Location"] == "/admin/task/"  # no longer Ana's to see
    db.session.expire_all()
    assert db.session.get(Task, mine.id).assignee == BEN
    assert client.get(url).status_code == 403
    assert signed_in(web, BEN).get(url).status_code == 200


def test_comments_are_shown_escaped_in_the_activity(web, db):
    team(db)
    account(db, "acme", ANA)
    mine = task(db, "acme", ANA, "Call Jane")
    client = signed_in(web, ANA)
    url = f"/admin/task/{mine.id}"
    token = page_token(client, url)
    client.post(f"{url}/comment", data={"text": "Left a voicemail <script>alert(1)</script>", "csrf_token": token})
    page = client.get(url).get_data(as_text=True)
    assert "Left a voicemail &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert client.post(f"{url}/comment", data={"text": "no token"}).status_code == 400


def test_the_account_page_draws_the_health_timeline(web, db):
    team(db)
    account(db, "acme", ANA, name="<script>x</script> Corp")
    add(
        db,
        HealthChange(account_id="acme", status="green", at=NOW - timedelta(days=90), source="crm"),
        HealthChange(account_id="acme", status="yellow", previous="green", at=NOW - timedelta(days=30), source="crm"),
        HealthChange(account_id="acme", status="red", previous="yellow", at=NOW - timedelta(days=2), source="crm"),
    )
    html = signed_in(web, ANA).get("/admin/account/acme").get_data(as_text=True)
    chart = re.search(r'<div class="card-body pb-0 health-chart"><svg.*?</svg>', html, re.S).group(0)
    assert chart.count('stroke-width="6"') == 3  # one step per status held
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt; Corp" in html


def test_the_health_chart_draws_score_points_when_given():
    from datetime import datetime

    from app.admin.charts import health_timeline

    now = datetime(2026, 11, 1, tzinfo=UTC)
    svg = health_timeline(
        [(now - timedelta(days=30), "green"), (now - timedelta(days=5), "red")],
        now,
        "t",
        scores=[(now - timedelta(days=30), 80), (now - timedelta(days=5), 35)],
    )
    assert 'class="score"' in svg and svg.count('stroke-width="6"') == 2
    assert 'class="score"' not in health_timeline([(now, "green")], now, "t")


def test_the_account_page_charts_usage_lists_key_metrics_and_the_events(web, db):
    from app.models import Event
    from app.signals.history import load_events

    team(db)
    account(db, "acme", ANA)
    today = NOW.date()
    # 40 days of usage with a week missing in the middle: the chart leaves a gap there.
    load_events(
        [
            {
                "id": f"u-{d}",
                "account_id": "acme",
                "type": "usage.daily",
                "occurred_at": f"{today - timedelta(days=d + 1)}T00:00:00Z",  # older than the two below
                "properties": {"active_users": 50 - d // 4, "logins": 80, "seats": 60},
            }
            for d in range(40)
            if not 15 <= d < 22
        ]
        + [
            {
                "id": "nps-1",
                "account_id": "acme",
                "type": "feedback.nps",
                "occurred_at": f"{today - timedelta(days=3)}T00:00:00Z",
                "properties": {"score": 9},
            }
        ]
    )
    add(
        db,
        Event(
            source="crm",
            external_id="w-1",
            type="account.health_changed",
            account_id="acme",
            occurred_at=NOW - timedelta(days=1),
            processed_at=NOW,
            payload={"health": {"to": "red", "reason": "Champion <b>left</b>"}},
        ),
        Event(
            source="api",
            external_id="e-1",
            type="support.ticket",
            account_id="acme",
            occurred_at=NOW - timedelta(hours=2),
            error="boom",
            payload={"properties": {"severity": "high", "subject": "Export broken"}},
        ),
    )
    html = signed_in(web, ANA).get("/admin/account/acme").get_data(as_text=True)
    usage = re.search(r'<div class="usage-chart"><svg.*?</svg>', html, re.S).group(0)
    assert usage.count("<polyline") == 6  # three series, each split in two by the missing week
    assert "active users" in usage and "seats" in usage
    metrics = re.search(r'<dl class="row small mb-0 key-metrics">(.*?)</dl>', html, re.S).group(1)
    assert re.search(r"last NPS</dt>\s*<dd[^>]*>9</dd>", metrics)
    assert re.search(r"logins, 30 days</dt>\s*<dd[^>]*>\d+</dd>", metrics)
    events = re.findall(r'<tr class="event-row">(.*?)</tr>', html, re.S)
    assert "support.ticket" in events[0] and "severity: high, subject: Export broken" in events[0]
    assert "usage.daily" in events[2]  # then the loaded history
    assert "error" in events[0] and "to red - Champion &lt;b&gt;left&lt;/b&gt;" in events[1]
    # Another CSM's account: not even its events.
    assert signed_in(web, BEN).get("/admin/account/acme").status_code == 403


def test_the_usage_chart_draws_lines_with_gaps():
    from app.admin.charts import lines

    svg = lines(["a", "b", "c", "d"], {"x": [1, 2, None, 4], "y": [None, None, None, 3]}, "t")
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 2  # x: a line and a lone point; y: one point
