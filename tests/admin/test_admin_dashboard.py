"""The executive dashboard and the audit log, through the Flask test client, on the real database."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import event as sa_event

from app.admin.dashboard_figures import cancellations, status_over_time, trend, week_points
from app.models import AuditEntry, HealthChange
from tests.helpers import ANA, BEN, MO, NOW, OPS, account, add, signed_in, task, team


def change(db, account_id, status, days_ago, previous=None):
    add(
        db,
        HealthChange(
            account_id=account_id,
            status=status,
            previous=previous,
            at=NOW - timedelta(days=days_ago),
            source="crm",
            reason="test",
        ),
    )


def _portfolio(db):
    team(db)
    account(db, "acme", ANA, health_status="red", plan="premier", segment="enterprise", lifecycle_stage="adoption")
    account(db, "globex", BEN, health_status="black", plan="starter", segment="smb", lifecycle_stage="renewal")
    account(
        db, "initech", ANA, health_status="green", plan="premier", segment="enterprise", lifecycle_stage="onboarding"
    )
    change(db, "acme", "green", 100)
    change(db, "acme", "red", 10, previous="green")
    change(db, "globex", "yellow", 60)
    change(db, "globex", "black", 3, previous="yellow")
    change(db, "initech", "green", 40)


def test_status_over_time_holds_each_status_until_the_next_change(app, db):
    _portfolio(db)
    points = week_points(NOW)
    with app.test_request_context():
        from flask_login import login_user

        from app.models import User

        login_user(db.session.query(User).filter_by(email=OPS).one())
        series = status_over_time(points)
        black = cancellations(points)
    assert len(series["green"]) == len(points) == 26
    # now: acme red, globex black, initech green
    assert [series[s][-1] for s in ("green", "yellow", "red", "black")] == [1, 0, 1, 1]
    # ten weeks ago: acme green, globex not yet a customer in the history, initech not yet
    assert [series[s][-11] for s in ("green", "yellow", "red", "black")] == [1, 0, 0, 0]
    # seven weeks ago: acme green, globex yellow, initech not yet
    assert [series[s][-8] for s in ("green", "yellow", "red", "black")] == [1, 1, 0, 0]
    assert sum(black) == 1 and black[-1] + black[-2] == 1
    assert trend([1, 2, 0, 0, 0, 1, 0, 0], 4)["direction"] == "down"
    assert trend([0, 0, 1, 0, 1, 2, 0, 3], 4)["direction"] == "up"


def test_the_dashboard_answers_the_handbooks_questions_with_charts(web, db):
    _portfolio(db)
    for i in range(4):
        task(db, "acme", ANA, f"Overdue {i}", due_at=NOW - timedelta(days=2))
    task(db, "globex", BEN, "Ben on time")
    client = signed_in(web, OPS)
    response = client.get("/admin/dashboard/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count("<svg") >= 6  # over time, cancellations, CSM load, plan, segment, stage
    assert re.search(r'data-status="red"[^>]*>1<', html) and re.search(r'data-status="black"[^>]*>1<', html)
    assert "Accounts by status at each week" in html and "trending up" in html
    assert "Status by plan" in html and "Status by segment" in html and "Status by lifecycle stage" in html
    assert "premier" in html and "starter" in html
    ana_row = re.search(r'<tr class="csm-row table-danger" data-email="ana@vendor.example">(.*?)</tr>', html, re.S)
    assert ana_row and "overloaded" in ana_row.group(1)  # 1 red account + 4 overdue tasks
    assert 'data-email="ben@vendor.example"' in html


def test_the_dashboard_is_for_managers_and_ops_and_a_manager_sees_their_team(web, db):
    _portfolio(db)
    assert signed_in(web, ANA).get("/admin/dashboard/").status_code == 403
    assert "Dashboard" not in signed_in(web, ANA).get("/admin/task/").get_data(as_text=True)
    html = signed_in(web, MO).get("/admin/dashboard/").get_data(as_text=True)
    assert "My team&#39;s portfolio" in html and "2 accounts" in html  # acme and initech, not Ben's globex
    assert 'data-email="ben@vendor.example"' not in html


def _statements(engine, action):
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        action()
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    return statements


def test_the_dashboard_queries_do_not_grow_with_the_portfolio_and_a_warm_page_only_reads(web, db):
    from app.admin import dashboard_snapshot

    _portfolio(db)
    for i in range(30):
        account(db, f"more-{i:02}", ANA if i % 2 else BEN, health_status="yellow")
        change(db, f"more-{i:02}", "yellow", i + 1)
        task(db, f"more-{i:02}", ANA, f"T{i}")
    client = signed_in(web, OPS)
    # The figures for everyone and Mo's team: a handful of grouped queries per scope, whatever the size.
    refreshed = []
    computing = _statements(db.engine, lambda: refreshed.extend(dashboard_snapshot.refresh()))
    assert sorted(refreshed) == ["all", f"team:{MO}"]
    assert len(computing) <= 2 * 14, computing
    # The page itself: who is signed in and whether the history changed; no figure is computed.
    page = _statements(db.engine, lambda: client.get("/admin/dashboard/"))
    assert len(page) <= 3, page
    assert not any("GROUP BY" in s.upper() for s in page), page


def test_a_stale_dashboard_is_shown_as_of_its_time_and_refreshed_by_a_worker(web, db, run_jobs):
    from app.admin import dashboard_snapshot
    from app.jobs import MAINTENANCE, queue
    from app.redis_conn import get_redis

    _portfolio(db)
    client = signed_in(web, OPS)
    first = client.get("/admin/dashboard/").get_data(as_text=True)  # never computed: computed once, here
    assert re.search(r'data-status="black"[^>]*>1<', first)
    # A late delivery and a new cancellation: the page keeps its figures and asks a worker for new ones.
    change(db, "initech", "red", 30, previous="green")
    change(db, "initech", "black", 1, previous="red")
    db.session.execute(db.text("UPDATE accounts SET health_status = 'black' WHERE id = 'initech'"))
    db.session.commit()
    stale = client.get("/admin/dashboard/").get_data(as_text=True)
    assert re.search(r'data-status="black"[^>]*>1<', stale)
    assert queue(MAINTENANCE).count == 1
    client.get("/admin/dashboard/")
    assert queue(MAINTENANCE).count == 1  # one refresh per scope at a time
    run_jobs()
    assert not get_redis().exists("triage:dashboard:refreshing:all")
    fresh = client.get("/admin/dashboard/").get_data(as_text=True)
    assert re.search(r'data-status="black"[^>]*>2<', fresh)
    snapshot = dashboard_snapshot.load("all")
    assert sum(snapshot["history"]["over_time"]["red"]) >= 4  # initech's red weeks a month ago are in
    assert snapshot["history"]["cancellations"][-1] + snapshot["history"]["cancellations"][-2] == 2


def test_the_periodic_job_warms_every_scope(web, db, run_jobs):
    from app.admin import dashboard_snapshot
    from workers.maintenance import warm_dashboards
    from workers.periodic import PERIODIC

    _portfolio(db)
    assert warm_dashboards in [job["func"] for job in PERIODIC]
    assert dashboard_snapshot.load("all") is None
    warm_dashboards()
    team_view = dashboard_snapshot.load(f"team:{MO}")
    assert team_view["live"]["now_counts"]["red"]["count"] == 1 and "black" not in team_view["live"]["now_counts"]
    assert dashboard_snapshot.load("all")["live"]["now_counts"]["black"]["count"] == 1


def test_the_audit_log_lists_newest_first_with_filters(web, db):
    team(db)
    account(db, "acme", ANA)
    mine = task(db, "acme", ANA, "Call Jane")
    add(
        db,
        AuditEntry(
            actor=ANA,
            action="task.completed",
            object_type="task",
            object_id=str(mine.id),
            summary="Call Jane: done",
            at=NOW - timedelta(days=2),
            details={"note": "<b>hi</b>"},
        ),
        AuditEntry(
            actor=OPS,
            action="rule.disabled",
            object_type="rule",
            object_id="health-red",
            summary="paused <script>x</script>",
            at=NOW - timedelta(hours=1),
        ),
        AuditEntry(
            actor="system",
            action="account.offboarded",
            object_type="account",
            object_id="acme",
            summary="GDPR off-boarding",
            at=NOW - timedelta(days=40),
        ),
    )
    assert signed_in(web, ANA).get("/admin/audit/").status_code == 403
    client = signed_in(web, OPS)
    html = client.get("/admin/audit/").get_data(as_text=True)
    assert html.index("rule.disabled") < html.index("task.completed") < html.index("account.offboarded")
    assert "<script>x</script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert f'href="/admin/task/{mine.id}"' in html and 'href="/admin/account/acme"' in html
    only = client.get("/admin/audit/?flt0_action_equals=task.completed").get_data(as_text=True)
    assert "task.completed" in only and "rule.disabled" not in only
    week = client.get("/admin/audit/?flt0_when_in=7").get_data(as_text=True)
    assert "task.completed" in week and "account.offboarded" not in week
    by_actor = client.get(f"/admin/audit/?flt0_actor_equals={OPS}").get_data(as_text=True)
    assert "rule.disabled" in by_actor and "task.completed" not in by_actor
    assert signed_in(web, MO).get("/admin/audit/").status_code == 200


def test_the_rules_page_is_in_the_menu_for_managers_and_ops(web, db):
    team(db)
    assert signed_in(web, ANA).get("/admin/rules/").status_code == 403
    for email in (MO, OPS):
        client = signed_in(web, email)
        assert 'href="/admin/rules/"' in client.get("/admin/task/").get_data(as_text=True)
        assert client.get("/admin/rules/").status_code == 200
