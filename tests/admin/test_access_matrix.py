"""Who may reach what, route by route: every rule of `app.url_map`, every method.

The routes come from the app itself, so a route added later is in the matrix without an edit
here; a route outside /admin/ and /api/v1/ must be listed in PUBLIC (with the reason) or the
test fails. Ana is a CSM reporting to Mo (a manager); Ben is a CSM of another team (Zoe's);
Olu is CS ops. Ben's task, account, event and run are the "other team's" objects throughout.
"""

from __future__ import annotations

import pytest
from werkzeug.routing import Rule

from app.admin.cli import create_token
from app.models import Account, AuditEntry, Event, PlaybookRun, Task, User
from app.models.comment import TaskComment
from tests.helpers import ANA, BEN, MO, NOW, OPS, TEST_TOKEN, account, add, page_token, signed_in, task, team

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # answered by Werkzeug from GET / the rule itself
BEN_TITLE, BEN_ACCOUNT = "Ben's confidential renewal plan", "Globex GmbH"

# Every route outside /admin/ and /api/v1/ (and the admin's static files), with why anyone may
# call it and what an anonymous caller gets. A new one fails test_every_route_is_classified.
PUBLIC = {
    "/": ("a redirect to the admin, which asks for sign-in", {"GET": 302}),
    "/login": ("the sign-in form; a POST without the form's CSRF token is refused", {"GET": 200, "POST": 400}),
    "/logout": ("a POST with CSRF token; signs out, nothing to read", {"POST": 400}),
    "/static/<path:filename>": ("the app's static files (none are secret)", {"GET": 404}),
    "/admin/static/<path:filename>": ("Flask-Admin's CSS and scripts", {"GET": 404}),
    "/healthz": ("CONTRACT section 5: load balancers probe it without a token", {"GET": 200}),
    "/webhooks/crm": ("CONTRACT section 2: authenticated by its Standard Webhooks signature", {"POST": 401}),
    "/webhooks/hubspot": ("CONTRACT section 2b: HubSpot signature v3 (no secret configured: 401)", {"POST": 401}),
    "/webhooks/salesforce": ("CONTRACT section 2b: the organisation id (none configured: 401)", {"POST": 401}),
}
# What an anonymous caller posts there: a well-formed body, so the answer is the authentication's.
PUBLIC_BODIES = {
    "/login": {"data": {"email": ANA, "password": "x"}},
    "/logout": {"data": {}},
    "/webhooks/crm": {
        "json": {
            "type": "account.health_changed",
            "occurred_at": "2026-11-20T10:00:00Z",
            "account": {"id": "globex"},
            "health": {"to": "red"},
        }
    },
    "/webhooks/hubspot": {"json": []},
    "/webhooks/salesforce": {"data": "<soapenv:Envelope/>", "content_type": "text/xml"},
}
# /api/v1 routes without an object id in the path, and what a personal token gets there.
API_WITHOUT_ID = {
    ("GET", "/api/v1/tasks"): 200,  # scoped: see test_api_lists_are_scoped
    ("POST", "/api/v1/events"): 403,  # feeds the pipeline for every account: service tokens only
    ("GET", "/api/v1/openapi.json"): 200,  # the document: the same for everyone with a token
}


# Admin routes kept to some roles whatever the object (no team scoping): what a CSM (Ana), a
# manager (Mo) and CS ops (Olu) get. Score quality: managers read the report, as on the Rules
# page; only CS ops and admins run it. Every route of a view named here must be listed.
ROLE_ROUTES = {
    ("GET", "/admin/score-quality/"): {ANA: 403, MO: 200, OPS: 200},
    ("POST", "/admin/score-quality/run"): {ANA: 403, MO: 403, OPS: 302},
}
ROLE_VIEWS = ("score_quality",)


def routes(prefix: str) -> list[tuple[Rule, str]]:
    from flask import current_app

    return [
        (rule, method)
        for rule in current_app.url_map.iter_rules()
        if rule.rule.startswith(prefix) and rule.rule not in PUBLIC
        for method in sorted(rule.methods - IGNORED_METHODS)
    ]


@pytest.fixture
def world(app, db):
    """Two teams' work, and a personal API token for Ana and for Mo."""
    team(db)
    account(db, "acme", ANA)
    account(db, "globex", BEN, name=BEN_ACCOUNT)
    objects = {
        "ana_task": task(db, "acme", ANA, "Ana's plan"),
        "mo_task": task(db, "acme", MO, "Mo's plan"),
        "ben_task": task(db, "globex", BEN, BEN_TITLE),
        "ben_event": add(
            db,
            Event(
                source="crm",
                external_id="msg_globex",
                type="account.health_changed",
                account_id="globex",
                occurred_at=NOW,
                payload={"note": BEN_TITLE},
            ),
        )[0],
        "ben_run": add(
            db, PlaybookRun(playbook="scenery", playbook_version="v1", account_id="globex", status="waiting")
        )[0],
    }
    for email in (ANA, MO):
        user = db.session.query(User).filter_by(email=email).one()
        objects[email] = create_token(user, "matrix")[1]
    return objects


def sample_values(rule: Rule, world: dict) -> dict:
    """Path values aimed at the other team's objects."""
    samples = {"task_id": world["ben_task"].id, "account_id": "globex", "export_type": "csv"}
    missing = set(rule.arguments) - set(samples)
    assert not missing, f"{rule.rule}: give the matrix a sample value for {sorted(missing)}"
    return {name: samples[name] for name in rule.arguments}


def model_id(endpoint: str, world: dict) -> str:
    """The `id` Flask-Admin's model views take in the query or form, per view."""
    view = endpoint.split(".")[0]
    return str(
        {
            "task": world["ben_task"].id,
            "account": "globex",
            "event": world["ben_event"].id,
            "playbookrun": world["ben_run"].id,
        }.get(view, 1)
    )


def form_for(endpoint: str, world: dict, token: str) -> dict:
    """Every field an admin form may read, filled so that the change would succeed if allowed."""
    target = model_id(endpoint, world)
    return {
        "csrf_token": token,
        "outcome": "done",
        "note": "n",
        "until": (NOW.date().replace(year=NOW.year + 1)).isoformat(),
        "reason": "r",
        "assignee": ANA,
        "text": "a comment",
        "rowid": [target],
        "id": target,
        "list_form_pk": target,
        "queue": "maintenance",
        "job_id": "x",
        "rule": "health-red",
        "url": "/admin/",
    }


def admin_requests(app, world: dict, token: str):
    """(rule, method, url, form) for every admin route; one request per bulk action."""
    adapter = app.url_map.bind("localhost")
    admin = app.extensions["triage_admin"]
    actions = {view.endpoint: [name for name, _ in getattr(view, "_actions", [])] for view in admin._views}
    for rule, method in routes("/admin/"):
        url = adapter.build(rule.endpoint, sample_values(rule, world), method=method)
        target = model_id(rule.endpoint, world)
        url += f"?id={target}&url=/admin/" if not rule.arguments else ""
        form = form_for(rule.endpoint, world, token) if method == "POST" else None
        if rule.endpoint.endswith(".action_view"):
            for name in actions.get(rule.endpoint.split(".")[0]) or [None]:
                yield rule, method, url, {**form, "action": name} if name else form
        else:
            yield rule, method, url, form


def send(client, method: str, url: str, form: dict | None):
    return client.open(url, method=method, data=form)


def assert_unchanged(db, world: dict) -> None:
    """Nothing of the other team's was changed, commented or logged by the requests."""
    db.session.expire_all()
    ben = db.session.get(Task, world["ben_task"].id)
    assert (ben.status, ben.assignee, ben.snoozed_until, ben.outcome) == ("open", BEN, None, None)
    globex = db.session.get(Account, "globex")  # not deleted (Flask-Admin's bulk "delete" is in the sweep)
    assert (globex.csm, globex.name) == (BEN, BEN_ACCOUNT)
    assert db.session.query(TaskComment).count() == 0
    assert db.session.query(AuditEntry).filter(AuditEntry.action.like("task.%")).count() == 0


# -- every route is classified --------------------------------------------------------------


def test_every_route_is_classified(app):
    for rule in app.url_map.iter_rules():
        if rule.rule in PUBLIC:
            assert set(PUBLIC[rule.rule][1]) == rule.methods - IGNORED_METHODS, rule.rule
        else:
            assert rule.rule.startswith(("/admin/", "/api/v1/")), (
                f"{rule.rule} is neither admin nor API: protect it, or list it in PUBLIC with the reason"
            )


def test_public_routes_answer_anonymous_callers_as_listed(web, world):
    client = web()
    for path, (_reason, expected) in PUBLIC.items():
        url = path.replace("<path:filename>", "no-such-file.css")
        for method, status in expected.items():
            response = client.open(url, method=method, **PUBLIC_BODIES.get(path, {}))
            assert response.status_code == status, (method, path, response.status_code)
            assert BEN_TITLE not in response.get_data(as_text=True)


# -- anonymous --------------------------------------------------------------------------------


def test_anonymous_callers_are_sent_to_sign_in_on_every_admin_route(app, web, db, world):
    client = web()
    token = page_token(client, "/login")  # with a valid CSRF token: the access check itself answers
    checked = 0
    for _rule, method, url, form in admin_requests(app, world, token):
        response = send(client, method, url, form)
        assert response.status_code == 302, (method, url, response.status_code)
        assert response.headers["Location"].startswith("/login?next="), (method, url)
        checked += 1
    assert checked >= 60  # the admin's ~60 routes and bulk actions, not an empty loop
    assert_unchanged(db, world)


def test_every_api_route_answers_401_without_a_token(app, web, world):
    adapter = app.url_map.bind("localhost")
    for rule, method in routes("/api/v1/"):
        url = adapter.build(rule.endpoint, sample_values(rule, world), method=method)
        for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer trg_forged"}):
            response = web().open(url, method=method, json={}, headers=headers)
            assert response.status_code == 401, (method, url, headers, response.status_code)
            assert set(response.get_json()) == {"error"}
            assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- a CSM and a manager in the admin -----------------------------------------------------------


@pytest.mark.parametrize("email", [ANA, MO])
def test_nobody_reaches_another_teams_work_on_any_admin_route(app, web, db, world, email):
    client = signed_in(web, email)
    token = page_token(client, "/admin/task/")
    for rule, method, url, form in admin_requests(app, world, token):
        response = send(client, method, url, form)
        body = response.get_data(as_text=True)
        where = (email, method, url, response.status_code)
        if {"task_id", "account_id"} & set(rule.arguments):
            assert response.status_code in (403, 404), where  # the other team's object, by id
        else:
            assert response.status_code in (200, 302, 403, 404), where
        assert BEN_TITLE not in body and BEN_ACCOUNT not in body, where
        if response.status_code == 302:
            location = response.headers["Location"]
            assert f"/admin/task/{world['ben_task'].id}" not in location and "globex" not in location, where
    assert_unchanged(db, world)


LIST_PROBES = [  # filters aimed at Ben's rows: scoping must still hide them
    "/admin/task/",
    f"/admin/task/?flt0_assignee_equals={BEN}&flt1_status_equals=any",
    "/admin/task/?flt0_account_id_equals=globex",
    "/admin/task/?search=confidential",
    "/admin/account/",
    f"/admin/account/?flt0_csm_equals={BEN}",
    "/admin/account/?search=globex",
]


def test_admin_lists_are_scoped(web, world):
    ana, mo, ops = (signed_in(web, email) for email in (ANA, MO, OPS))
    for url in LIST_PROBES:
        # CS ops see Ben's rows through the same filters: so the filters do select them.
        assert BEN_TITLE in ops.get(url).get_data(as_text=True) or BEN_ACCOUNT in ops.get(url).get_data(as_text=True), (
            url
        )
        for client in (ana, mo):
            html = client.get(url).get_data(as_text=True)
            assert BEN_TITLE not in html and BEN_ACCOUNT not in html, url
    ana_tasks = ana.get("/admin/task/").get_data(as_text=True)
    assert "Ana&#39;s plan" in ana_tasks and "Mo&#39;s plan" not in ana_tasks
    mo_tasks = mo.get("/admin/task/").get_data(as_text=True)
    assert "Ana&#39;s plan" in mo_tasks and "Mo&#39;s plan" in mo_tasks
    assert "Acme GmbH" in mo.get("/admin/account/").get_data(as_text=True)


def test_a_manager_does_not_read_another_teams_work_in_the_audit_log(web, db, world):
    from app.playbooks.tasks import complete_task

    complete_task(world["ben_task"].id, "done", "spoke to the CFO", actor=BEN)
    complete_task(world["ana_task"].id, "done", "agreed a plan with the COO", actor=ANA)
    html = signed_in(web, MO).get("/admin/audit/").get_data(as_text=True)
    assert BEN_TITLE not in html and "spoke to the CFO" not in html
    assert "agreed a plan with the COO" in html  # the team's own work stays visible
    everything = signed_in(web, OPS).get("/admin/audit/").get_data(as_text=True)
    assert "spoke to the CFO" in everything and "agreed a plan with the COO" in everything


def test_role_routes_are_listed_and_answer_each_role_as_listed(app, web, db, world):
    listed = {(method, rule.rule) for rule, method in routes("/admin/") if rule.endpoint.split(".")[0] in ROLE_VIEWS}
    assert listed == set(ROLE_ROUTES), "classify every route of these views in ROLE_ROUTES"
    for email in (ANA, MO, OPS):
        client = signed_in(web, email)
        token = page_token(client, "/admin/task/")
        for (method, url), expected in ROLE_ROUTES.items():
            response = client.open(url, method=method, data={"csrf_token": token} if method == "POST" else None)
            assert response.status_code == expected[email], (email, method, url, response.status_code)
            assert BEN_TITLE not in response.get_data(as_text=True)


# -- the same people with personal API tokens --------------------------------------------------


@pytest.mark.parametrize("email", [ANA, MO])
def test_personal_tokens_get_404_for_another_teams_objects_on_every_api_route(app, web, db, world, email):
    adapter = app.url_map.bind("localhost")
    headers = {"Authorization": f"Bearer {world[email]}"}
    for rule, method in routes("/api/v1/"):
        url = adapter.build(rule.endpoint, sample_values(rule, world), method=method)
        response = web().open(url, method=method, json={"outcome": "done"}, headers=headers)
        where = (email, method, url, response.status_code)
        if rule.arguments:
            assert response.status_code == 404, where
        else:
            assert (method, rule.rule) in API_WITHOUT_ID, f"{where}: classify this route in API_WITHOUT_ID"
            assert response.status_code == API_WITHOUT_ID[(method, rule.rule)], where
        assert BEN_TITLE not in response.get_data(as_text=True), where
        # The service token reaches the same objects: the 404 is scope, not a wrong URL.
        if rule.arguments and method == "GET":
            assert web().get(url, headers={"Authorization": f"Bearer {TEST_TOKEN}"}).status_code == 200, url
    assert_unchanged(db, world)


def test_api_lists_are_scoped(web, world):
    def titles(email, query=""):
        response = web().get(f"/api/v1/tasks{query}", headers={"Authorization": f"Bearer {world[email]}"})
        assert response.status_code == 200
        return sorted(t["title"] for t in response.get_json())

    assert titles(ANA) == ["Ana's plan"]
    assert titles(MO) == ["Ana's plan", "Mo's plan"]
    for query in (f"?assignee={BEN}", "?account=globex", f"?assignee={BEN.upper()}&status=open"):
        assert titles(ANA, query) == [] and titles(MO, query) == [], query
