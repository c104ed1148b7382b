"""The web admin, through the Flask test client, against the real database and Redis."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from rq import SimpleWorker
from sqlalchemy import event as sa_event

from app.models import Contact, Event, HealthChange, PlaybookRun, RunStep, Task, User
from tests.helpers import (
    ANA,
    BEN,
    MO,
    NOW,
    OPS,
    PASSWORD,
    account,
    add,
    csrf_from,
    early_in_a_rate_window,
    page_token,
    sign_in,
    signed_in,
    task,
    team,
)


def explode():
    """A job that fails (module level, so that the worker can import it)."""
    raise RuntimeError("boom from the test")


# -- signing in ---------------------------------------------------------------------------


def test_sign_in_lands_on_my_tasks_and_sign_out_ends_the_session(web, db):
    team(db)
    client = web()
    response = sign_in(client, ANA)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    response = client.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/task/")
    listing = client.get("/admin/task/").get_data(as_text=True)
    assert "My tasks" in listing and ANA in listing

    token = page_token(client, "/admin/task/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/admin/task/").headers["Location"].startswith("/login")


def test_wrong_password_or_unknown_email_is_refused(web, db):
    team(db)
    client = web()
    for email, password in ((ANA, "wrong-password"), ("nobody@vendor.example", PASSWORD)):
        response = sign_in(client, email, password)
        assert response.status_code == 401
        assert "Wrong e-mail or password" in response.get_data(as_text=True)
        assert client.get("/admin/task/").status_code == 302


def test_password_guessing_is_rate_limited(web, db, app):
    team(db)
    client = web()
    early_in_a_rate_window()  # the attempts (a password hash each) must not straddle two windows
    answers = [sign_in(client, ANA, f"guess-{i}").status_code for i in range(11)]
    assert answers == [401] * 10 + [429]
    limited = sign_in(client, ANA, PASSWORD)  # even the right password waits now
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many sign-in attempts" in limited.get_data(as_text=True)
    assert sign_in(web(), "ben@vendor.example", "nope").status_code == 401  # others are not locked out


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(web, db):
    team(db)
    client = web()
    response = client.get("/admin/account/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/admin/account/"
    assert sign_in(client, ANA, next_url="/admin/account/").headers["Location"] == "/admin/account/"

    other = web()
    assert sign_in(other, ANA, next_url="//evil.example/x").headers["Location"] == "/admin/"


def test_root_redirects_to_the_admin(web, db):
    response = web().get("/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/")


ADMIN_URLS = [
    "/admin/",
    "/admin/task/",
    "/admin/task/1",
    "/admin/task/?flt0_status_equals=done",
    "/admin/account/",
    "/admin/account/acme",
    "/admin/queues/",
    "/admin/score-quality/",
    "/admin/event/",
    "/admin/event/details/?id=1",
    "/admin/playbookrun/",
    "/admin/playbookrun/details/?id=1",
    "/admin/task/details/?id=1",
    "/admin/task/edit/?id=1",
]


@pytest.mark.parametrize("url", ADMIN_URLS)
def test_anonymous_requests_are_sent_to_sign_in(web, db, url):
    response = web().get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_anonymous_posts_are_sent_to_sign_in(web, db):
    client = web()
    token = page_token(client, "/login")
    for url in ("/admin/task/1/complete", "/admin/queues/retry", "/admin/queues/delete", "/admin/score-quality/run"):
        response = client.post(url, data={"csrf_token": token})
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url


def test_a_post_without_csrf_token_is_refused(web, db):
    team(db)
    account(db, "acme", ANA)
    mine = task(db, "acme", ANA, "Call Jane")
    client = signed_in(web, ANA)
    refused = client.post(f"/admin/task/{mine.id}/complete", data={"outcome": "done"})
    assert refused.status_code == 400 and "could not be sent" in refused.get_data(as_text=True)
    assert (
        client.post(f"/admin/task/{mine.id}/complete", data={"outcome": "done", "csrf_token": "forged"}).status_code
        == 400
    )
    assert client.post("/logout").status_code == 400
    db.session.refresh(mine)
    assert mine.status == "open"
    assert client.get("/admin/task/").status_code == 200  # still signed in


# -- tasks --------------------------------------------------------------------------------


def test_a_csm_sees_only_their_open_tasks_most_urgent_first(web, db):
    team(db)
    account(db, "acme", ANA)
    account(db, "globex", BEN)
    task(db, "acme", ANA, "Ana normal later", priority="normal", due_at=NOW + timedelta(days=9))
    task(db, "acme", ANA, "Ana urgent", priority="urgent", due_at=NOW + timedelta(days=5))
    task(db, "acme", ANA, "Ana overdue", priority="normal", due_at=NOW - timedelta(days=1))
    task(db, "acme", ANA.upper(), "Ana in capitals", priority="low")
    task(db, "acme", ANA, "Ana finished", status="done", outcome="done")
    task(db, "globex", BEN, "Ben secret")

    html = signed_in(web, ANA).get("/admin/task/").get_data(as_text=True)
    titles = re.findall(r'<a href="/admin/task/\d+">([^<]+)</a>', html)
    assert titles == ["Ana urgent", "Ana overdue", "Ana normal later", "Ana in capitals"]
    assert "Ben secret" not in html and "Ana finished" not in html
    assert 'badge badge-danger status-urgent">urgent' in html
    assert "overdue text-danger" in html  # the overdue row is highlighted

    done = signed_in(web, ANA).get("/admin/task/?flt0_status_equals=done").get_data(as_text=True)
    assert "Ana finished" in done and "Ana urgent" not in done and "Ben secret" not in done
    searched = signed_in(web, ANA).get("/admin/task/?search=urgent").get_data(as_text=True)
    assert "Ana urgent" in searched and "Ana overdue" not in searched
    by_due = signed_in(web, ANA).get("/admin/task/?sort=4").get_data(as_text=True)  # the Due column
    assert re.findall(r'<a href="/admin/task/\d+">([^<]+)</a>', by_due)[:3] == [
        "Ana overdue",
        "Ana in capitals",
        "Ana urgent",
    ]


def test_a_manager_sees_their_reports_tasks_and_ops_see_all(web, db):
    team(db)
    account(db, "acme", ANA)
    account(db, "globex", BEN)
    task(db, "acme", ANA, "Ana task")
    task(db, "acme", MO, "Mo task")
    task(db, "globex", BEN, "Ben task")

    manager = signed_in(web, MO).get("/admin/task/").get_data(as_text=True)
    assert "Ana task" in manager and "Mo task" in manager and "Ben task" not in manager
    ops = signed_in(web, OPS).get("/admin/task/").get_data(as_text=True)
    assert all(title in ops for title in ("Ana task", "Mo task", "Ben task"))
    filtered = signed_in(web, OPS).get(f"/admin/task/?flt0_assignee_equals={BEN}").get_data(as_text=True)
    assert "Ben task" in filtered and "Ana task" not in filtered


def test_the_task_list_loads_in_a_fixed_number_of_queries(web, db):
    team(db)
    for i in range(25):
        account(db, f"acct-{i:02}", ANA)
        task(db, f"acct-{i:02}", ANA, f"Task {i}")
    client = signed_in(web, ANA)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        html = client.get("/admin/task/").get_data(as_text=True)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert "Acct-24 GmbH" in html
    assert len(statements) <= 4, statements  # user, count, page (no query per row)


def _task_with_history(db):
    account(db, "acme", ANA)
    add(db, Contact(account_id="acme", name="Jane Roe", email="jane@acme.example", role="decision_maker"))
    trigger = add(
        db,
        Event(
            source="crm",
            external_id="msg_1",
            type="account.health_changed",
            account_id="acme",
            occurred_at=NOW,
            payload={"health": {"to": "red"}},
        ),
    )[0]
    # A playbook name the catalog does not know: the run is scenery, never advanced.
    run = add(
        db,
        PlaybookRun(
            playbook="scenery-plan",
            playbook_version="v1",
            account_id="acme",
            rule="health-red",
            trigger_event_id=trigger.id,
            status="waiting",
        ),
    )[0]
    step_plan, step_mail = add(
        db,
        RunStep(run_id=run.id, name="action-plan", position=0, kind="task", status="open", assignee=ANA),
        RunStep(run_id=run.id, name="notify-manager", position=1, kind="action", action="email", status="succeeded"),
    )
    mine = task(
        db,
        "acme",
        ANA,
        "Make an action plan with your manager",
        run_id=run.id,
        step_id=step_plan.id,
        rule="health-red",
        event_id=trigger.id,
        priority="urgent",
        outcomes=["plan_agreed", "escalated"],
        instructions="**Highest priority.** Call <script>alert(1)</script> Jane\n\n- agree a plan\n- log it",
    )
    return mine, run, step_plan


def test_the_task_page_shows_what_why_and_the_account(web, db):
    team(db)
    mine, run, _ = _task_with_history(db)
    html = signed_in(web, ANA).get(f"/admin/task/{mine.id}").get_data(as_text=True)
    assert "<strong>Highest priority.</strong>" in html and "<li>agree a plan</li>" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "health-red" in html and "account.health_changed" in html and f"#{mine.event_id}" in html
    assert "scenery-plan" in html and "notify-manager" in html and "this task" in html
    assert "Jane Roe" in html and "Translation quality issues" in html and "120,000" in html
    assert 'value="plan_agreed"' in html and 'value="escalated"' in html


def test_a_csm_gets_403_on_another_csms_task(web, db):
    team(db)
    account(db, "globex", BEN)
    theirs = task(db, "globex", BEN, "Ben's task")
    client = signed_in(web, ANA)
    assert client.get(f"/admin/task/{theirs.id}").status_code == 403
    token = page_token(client, "/admin/task/")
    assert (
        client.post(f"/admin/task/{theirs.id}/complete", data={"outcome": "done", "csrf_token": token}).status_code
        == 403
    )
    assert client.get("/admin/task/999999").status_code == 404
    assert signed_in(web, MO).get(f"/admin/task/{theirs.id}").status_code == 403  # not Mo's report
    assert signed_in(web, OPS).get(f"/admin/task/{theirs.id}").status_code == 200


def test_completing_tasks_through_the_form_moves_the_run_on(web, db, post_webhook, run_jobs):
    from tests.helpers import health_webhook

    team(db)
    assert post_webhook(health_webhook(to="red")).status_code == 202
    run_jobs()
    ana = signed_in(web, ANA)
    listing = ana.get("/admin/task/").get_data(as_text=True)
    ids = [int(i) for i in re.findall(r'<a href="/admin/task/(\d+)">Action plan for Acme GmbH', listing)]
    assert len(ids) == 1  # Mo's task of the same run is not on Ana's list
    url = f"/admin/task/{ids[0]}"
    page = ana.get(url).get_data(as_text=True)
    assert "account.health_changed" in page and "manager-action-plan" in page
    token = csrf_from(page)

    refused = ana.post(f"{url}/complete", data={"outcome": "made-up", "csrf_token": token})
    assert refused.status_code == 302 and refused.headers["Location"] == url
    assert "Not a valid choice" in ana.get(url).get_data(as_text=True)

    response = ana.post(f"{url}/complete", data={"outcome": "done", "note": "Called Jane", "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/admin/task/"
    assert "Completed" in ana.get("/admin/task/").get_data(as_text=True)
    db.session.expire_all()
    mine = db.session.get(Task, ids[0])
    assert (mine.status, mine.outcome, mine.note, mine.completed_by) == ("done", "done", "Called Jane", ANA)
    assert db.session.get(RunStep, mine.step_id).status == "done"
    assert db.session.get(PlaybookRun, mine.run_id).status == "waiting"  # on Mo
    page = ana.get(url).get_data(as_text=True)
    assert "with outcome <strong>done</strong>" in page and "Complete this task" not in page

    again = ana.post(f"{url}/complete", data={"outcome": "done", "csrf_token": token})
    assert again.status_code == 302
    assert "already done" in ana.get(url).get_data(as_text=True)  # the TaskError, as a flash

    mo = signed_in(web, MO)
    theirs = db.session.query(Task).filter(Task.assignee == MO).one()
    mo_url = f"/admin/task/{theirs.id}"
    assert (
        mo.post(f"{mo_url}/complete", data={"outcome": "done", "csrf_token": page_token(mo, mo_url)}).status_code == 302
    )
    db.session.expire_all()
    assert db.session.get(PlaybookRun, mine.run_id).status == "completed"


# -- accounts -----------------------------------------------------------------------------


def test_accounts_are_scoped_and_the_account_page_tells_its_story(web, db):
    team(db)
    mine, run, _ = _task_with_history(db)
    account(db, "globex", BEN, health_status="green")
    account(db, "initech", ANA, health_status="yellow")
    add(
        db,
        HealthChange(
            account_id="acme",
            status="yellow",
            previous="green",
            at=NOW - timedelta(days=30),
            reason="Neutral",
            changed_by=ANA,
            source="crm",
        ),
        HealthChange(
            account_id="acme",
            status="red",
            previous="yellow",
            at=NOW,
            reason="Translation issues",
            changed_by=ANA,
            source="crm",
        ),
    )
    client = signed_in(web, ANA)

    listing = client.get("/admin/account/").get_data(as_text=True)
    assert "Acme GmbH" in listing and "Initech GmbH" in listing and "Globex GmbH" not in listing
    assert listing.index("Acme GmbH") < listing.index("Initech GmbH")  # red before yellow
    assert "badge badge-danger status-red" in listing
    only_yellow = client.get("/admin/account/?flt0_status_equals=yellow").get_data(as_text=True)
    assert "Initech GmbH" in only_yellow and "Acme GmbH" not in only_yellow

    html = client.get("/admin/account/acme").get_data(as_text=True)
    assert "Jane Roe" in html and "Translation issues" in html and "Neutral" in html
    assert html.index("Translation issues") < html.index("Neutral")  # newest first
    assert "scenery-plan" in html and "notify-manager" in html
    assert f'href="/admin/task/{mine.id}"' in html
    assert client.get("/admin/account/globex").status_code == 403
    assert client.get("/admin/account/nope").status_code == 404
    assert signed_in(web, MO).get("/admin/account/acme").status_code == 200


# -- records (CS ops) ---------------------------------------------------------------------


def test_events_and_runs_are_for_cs_ops(web, db):
    team(db)
    mine, run, _ = _task_with_history(db)
    csm = signed_in(web, ANA)
    for url in ("/admin/event/", "/admin/playbookrun/", f"/admin/playbookrun/details/?id={run.id}"):
        assert csm.get(url).status_code == 403, url
    ops = signed_in(web, OPS)
    assert "account.health_changed" in ops.get("/admin/event/").get_data(as_text=True)
    details = ops.get(f"/admin/event/details/?id={mine.event_id}").get_data(as_text=True)
    assert "&#34;to&#34;: &#34;red&#34;" in details or '"to": "red"' in details
    run_page = ops.get(f"/admin/playbookrun/details/?id={run.id}").get_data(as_text=True)
    assert "notify-manager" in run_page and "scenery-plan" in run_page
    assert "Create" not in ops.get("/admin/event/").get_data(as_text=True)
    assert ops.get("/admin/event/new/").status_code == 302  # read-only: no create view


# -- queues -------------------------------------------------------------------------------


def test_the_queues_page_lists_a_failed_job_and_retry_puts_it_back(app, web, db):
    from app.jobs import MAINTENANCE, queue
    from app.redis_conn import get_redis

    team(db)
    failing = queue(MAINTENANCE).enqueue(explode)
    doomed = queue(MAINTENANCE).enqueue(explode)
    SimpleWorker([queue(MAINTENANCE)], connection=get_redis()).work(burst=True, with_scheduler=False)
    assert queue(MAINTENANCE).failed_job_registry.count == 2

    assert signed_in(web, ANA).get("/admin/queues/").status_code == 403
    client = signed_in(web, OPS)
    html = client.get("/admin/queues/").get_data(as_text=True)
    assert failing.id in html and f"{explode.__module__}.explode" in html
    assert "RuntimeError: boom from the test" in html and "Traceback" in html
    assert "Outbox" in html and "Empty" in html

    token = csrf_from(html)
    assert client.post("/admin/queues/retry", data={"queue": MAINTENANCE, "job_id": failing.id}).status_code == 400
    response = client.post(
        "/admin/queues/retry", data={"queue": MAINTENANCE, "job_id": failing.id, "csrf_token": token}
    )
    assert response.status_code == 302
    assert failing.id in queue(MAINTENANCE).get_job_ids()
    assert failing.id not in queue(MAINTENANCE).failed_job_registry

    client.post("/admin/queues/delete", data={"queue": MAINTENANCE, "job_id": doomed.id, "csrf_token": token})
    assert queue(MAINTENANCE).failed_job_registry.count == 0
    assert get_redis().exists(f"rq:job:{doomed.id}") == 0
    assert (
        client.post(
            "/admin/queues/delete", data={"queue": "nope", "job_id": doomed.id, "csrf_token": token}
        ).status_code
        == 400
    )
    # A queued job is not deletable from here: only failed ones are.
    client.post("/admin/queues/delete", data={"queue": MAINTENANCE, "job_id": failing.id, "csrf_token": token})
    assert failing.id in queue(MAINTENANCE).get_job_ids()

    html = client.get("/admin/queues/").get_data(as_text=True)
    assert "put back on queue" in html
    assert re.search(r"<strong>maintenance</strong></td>\s*<td>1</td>", html)  # one queued again


def test_the_queues_page_shows_workers_and_the_outbox_backlog(web, db):
    from app.jobs import ALL, queue
    from app.redis_conn import get_redis

    team(db)
    add(
        db,
        Event(
            source="api",
            external_id="evt-1",
            type="usage.daily",
            account_id="acme",
            occurred_at=NOW,
            received_at=NOW - timedelta(minutes=30),
            payload={},
        ),  # unprocessed: the backlog
        Event(
            source="api",
            external_id="evt-2",
            type="usage.daily",
            account_id="acme",
            occurred_at=NOW,
            received_at=NOW - timedelta(minutes=40),
            processed_at=NOW,
            payload={},
        ),
    )
    worker = SimpleWorker([queue(name) for name in ALL], connection=get_redis(), name="test-worker")
    worker.register_birth()
    try:
        html = signed_in(web, MO).get("/admin/queues/").get_data(as_text=True)
    finally:
        worker.register_death()
    assert "test-worker" in html and "steps, events, maintenance" in html
    assert "<strong>1</strong> event(s) not yet processed" in html and "backlog" in html


def test_the_queues_page_lists_scheduled_and_running_jobs(web, db):

    from app.jobs import STEPS, queue
    from app.redis_conn import get_redis

    team(db)
    later = queue(STEPS).enqueue_in(timedelta(hours=2), explode, "<b>later</b>")
    sooner = queue(STEPS).enqueue_in(timedelta(minutes=5), explode, "sooner")
    running = queue(STEPS).enqueue(explode, "running")
    running.started_at, running.worker_name = datetime.now(UTC), "worker-on-host-2"
    running.save()
    # What a worker records when it starts a job (RQ 2: one execution per attempt).
    from rq.executions import Execution

    with get_redis().pipeline() as pipe:
        queue(STEPS).started_job_registry.add_execution(
            Execution.create(running, ttl=60, pipeline=pipe, worker_name="worker-on-host-2"), pipeline=pipe, ttl=60
        )
        pipe.execute()
    html = signed_in(web, OPS).get("/admin/queues/").get_data(as_text=True)
    scheduled = html[html.index('id="scheduled-steps"') :]
    assert scheduled.index(sooner.id) < scheduled.index(later.id)  # next first
    assert "&lt;b&gt;later&lt;/b&gt;" in scheduled and "<b>later</b>" not in html
    started = html[html.index('id="started-steps"') : html.index('id="scheduled-steps"')]
    assert running.id in started and "worker-on-host-2" in started
    assert 'href="#scheduled-steps">2</a>' in html and 'href="#started-steps">1</a>' in html


# -- the CLI ------------------------------------------------------------------------------


def test_flask_users_create_and_list(app, web, db):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "Olu@Vendor.example",
            "--role",
            "admin",
            "--name",
            "Olu",
            "--password",
            "long-enough-1",
            "--manager",
            MO,
        ]
    )
    assert result.exit_code == 0, result.output
    user = db.session.query(User).filter_by(email="olu@vendor.example").one()
    assert (user.role, user.name, user.manager_email) == ("admin", "Olu", MO)
    assert user.password_hash != "long-enough-1" and user.check_password("long-enough-1")

    again = runner.invoke(args=["users", "create", "olu@vendor.example", "--password", "long-enough-1"])
    assert again.exit_code == 1 and "exists already" in again.output
    assert (
        runner.invoke(
            args=["users", "create", "x@vendor.example", "--role", "boss", "--password", "long-enough-1"]
        ).exit_code
        == 2
    )
    assert runner.invoke(args=["users", "create", "y@vendor.example", "--password", "short"]).exit_code == 2
    prompted = runner.invoke(args=["users", "create", "z@vendor.example"], input="prompted-pw-1\nprompted-pw-1\n")
    assert prompted.exit_code == 0, prompted.output

    listing = runner.invoke(args=["users", "list"])
    assert "olu@vendor.example" in listing.output and "z@vendor.example" in listing.output

    client = web()
    assert sign_in(client, "OLU@vendor.example", "long-enough-1").status_code == 302
    assert client.get("/admin/queues/").status_code == 200

    changed = runner.invoke(args=["users", "set-password", "z@vendor.example", "--password", "another-pw-2"])
    assert changed.exit_code == 0
    assert sign_in(web(), "z@vendor.example", "another-pw-2").status_code == 302
