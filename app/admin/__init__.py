"""The web admin for CSMs, managers and CS ops (server-rendered, Flask-Admin).

- auth.py      sign-in at /login, sign-out, `/` -> /admin/
- access.py    roles and what each one sees
- tasks.py     /admin/task/ (the landing page) and /admin/task/<id>
- accounts.py  /admin/account/ and /admin/account/<id> (with the health chart)
- dashboard.py /admin/dashboard/: the executive dashboard (charts drawn as inline SVG by charts.py)
- audit.py     /admin/audit/: the audit log
- rules.py     /admin/rules/: the loaded rules, their state and fires (managers read, CS ops act)
- score_quality.py /admin/score-quality/: how well the scorecards predict churn (managers read, CS ops run)
- queues.py    /admin/queues/: RQ queues, failed jobs, outbox backlog
- records.py   /admin/event/, /admin/playbookrun/ (read-only)
- cli.py       `flask users create|list|set-password`
"""

from __future__ import annotations

from flask import Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme

from app.extensions import csrf, db


def init_app(app: Flask) -> None:
    from app.admin import auth, cli
    from app.admin.accounts import AccountView
    from app.admin.audit import AuditView
    from app.admin.dashboard import DashboardView
    from app.admin.queues import QueuesView
    from app.admin.records import EventView, PlaybookRunView
    from app.admin.rules import RulesView
    from app.admin.score_quality import ScoreQualityView
    from app.admin.tasks import TaskView
    from app.admin.views import HomeView
    from app.models import Account, AuditEntry, Event, PlaybookRun, Task

    csrf.init_app(app)  # every form post; the webhook and API blueprints exempt themselves
    auth.init_app(app)
    cli.init_app(app)

    # One Admin per app: views hold per-app blueprints.
    admin = Admin(
        app,
        name="Triage",
        index_view=HomeView(),
        theme=Bootstrap4Theme(base_template="triage_admin/base.html", fluid=True),
    )
    admin.add_view(TaskView(Task, db, name="Tasks", endpoint="task"))
    admin.add_view(AccountView(Account, db, name="Accounts", endpoint="account"))
    admin.add_view(DashboardView(name="Dashboard", endpoint="dashboard"))
    admin.add_view(RulesView(name="Rules", endpoint="rules"))
    admin.add_view(ScoreQualityView(name="Score quality", endpoint="score_quality", url="score-quality"))
    admin.add_view(QueuesView(name="Queues", endpoint="queues"))
    admin.add_view(AuditView(AuditEntry, db, name="Audit log", endpoint="audit"))
    admin.add_view(EventView(Event, db, name="Events", endpoint="event", category="Records"))
    admin.add_view(PlaybookRunView(PlaybookRun, db, name="Playbook runs", endpoint="playbookrun", category="Records"))
    app.extensions["triage_admin"] = admin
