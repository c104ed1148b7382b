"""Accounts: the portfolio list and the page of one account."""

from __future__ import annotations

from datetime import timedelta

from flask import abort, url_for
from flask_admin import expose
from flask_admin.contrib.sqla.filters import FilterEqual, FilterLike
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import case, select
from sqlalchemy.orm import selectinload

from app.admin import charts
from app.admin import formatting as fmt
from app.admin.access import EVERYTHING, assignee_check, may_see_account, scope_accounts
from app.admin.views import ScopedModelView
from app.extensions import db
from app.models import HEALTH_STATUSES, Account, Event, HealthChange, PlaybookRun, Task
from app.models.score import HealthScore
from app.models.types import utcnow
from app.models.usage import DailyUsage
from app.signals.metrics import metrics_for

# Default order of the list: the accounts that need attention first.
ATTENTION = ("red", "black", "yellow", "green")
HISTORY_LIMIT = 200
SCORES_LIMIT = 400
RUNS_LIMIT = 50
CLOSED_SHOWN = 20
EVENTS_SHOWN = 30
USAGE_DAYS = 90
# Labels of the shipped metrics shown beside the usage chart; every other metric, built in or
# declared in metrics/ (app/signals/indicators.py), follows under its own name.
KEY_METRICS = (
    ("active_users_avg_30d", "active users (30-day mean)"),
    ("active_users_change_pct_30d", "change vs the 30 days before, %"),
    ("logins_30d", "logins, 30 days"),
    ("seats", "seats"),
    ("new_users_30d", "new users, 30 days"),
    ("features_used_30d", "features used, 30 days"),
    ("nps_last", "last NPS"),
    ("happiness_last", "last happiness (1-4)"),
    ("tickets_30d", "support tickets, 30 days"),
    ("ticket_sentiment_30d", "ticket sentiment (-1..1)"),
)


def key_metrics(metrics: dict) -> list[tuple[str, object]]:
    """(label, value) of every metric: the shipped ones under their labels first, then the others."""
    labelled = dict(KEY_METRICS)
    first = [(label, metrics.get(name)) for name, label in KEY_METRICS if name in metrics]
    rest = [(name.replace("_", " "), value) for name, value in metrics.items() if name not in labelled]
    return first + rest


def _name(view, context, account, name):
    return Markup('<a href="{}">{}</a>').format(url_for("account.page", account_id=account.id), account)


class AccountView(ScopedModelView):
    list_template = "triage_admin/account_list.html"
    column_display_actions = False  # the name links to the page
    column_list = ("name", "health_status", "segment", "plan", "csm", "arr", "renewal_date")
    column_labels = {"health_status": "Status", "csm": "CSM", "arr": "ARR", "renewal_date": "Renewal"}
    column_sortable_list = ("name", "health_status", "segment", "plan", "csm", "arr", "renewal_date")
    column_searchable_list = ("name", "id")
    column_filters = (
        FilterEqual(Account.health_status, "Status", options=[(s, s) for s in HEALTH_STATUSES]),
        FilterEqual(Account.segment, "Segment"),
        FilterEqual(Account.csm, "CSM"),
        FilterLike(Account.csm, "CSM"),
        FilterEqual(Account.plan, "Plan"),
    )
    column_formatters = {
        "name": _name,
        "health_status": lambda v, c, account, n: fmt.badge(account.health_status),
        "arr": lambda v, c, account, n: fmt.money(account.arr),
        "renewal_date": lambda v, c, account, n: fmt.when(account.renewal_date),
        "csm": lambda v, c, account, n: fmt.text(account.csm),
    }

    scope = staticmethod(scope_accounts)
    may_see = staticmethod(may_see_account)

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        if sort_column is None:
            rank = case({s: i for i, s in enumerate(ATTENTION)}, value=Account.health_status, else_=len(ATTENTION))
            return query.order_by(rank, Account.renewal_date.is_(None), Account.renewal_date, Account.id), joins
        query, joins = super()._apply_sorting(query, joins, sort_column, sort_desc)
        return query.order_by(Account.id), joins

    def list_heading(self) -> str:
        if current_user.role == "csm":
            return "My accounts"
        return "My team's accounts" if current_user.role == "manager" else "Accounts"

    # `path`: CRM ids may contain slashes.
    @expose("/<path:account_id>")
    def page(self, account_id: str) -> str:
        account = db.session.scalars(
            select(Account).where(Account.id == account_id).options(selectinload(Account.contacts))
        ).first()
        if account is None:
            abort(404)
        if not may_see_account(account):
            abort(403)
        history = db.session.scalars(
            select(HealthChange)
            .where(HealthChange.account_id == account.id)
            .order_by(HealthChange.at.desc(), HealthChange.id.desc())
            .limit(HISTORY_LIMIT)
        ).all()
        runs = db.session.scalars(
            select(PlaybookRun)
            .where(PlaybookRun.account_id == account.id)
            .options(selectinload(PlaybookRun.steps))
            .order_by(PlaybookRun.started_at.desc(), PlaybookRun.id.desc())
            .limit(RUNS_LIMIT)
        ).all()
        tasks = db.session.scalars(
            select(Task).where(Task.account_id == account.id).order_by(*Task.urgency_order())
        ).all()
        step_tasks = {t.step_id: t.id for t in tasks if t.step_id is not None}
        scores = score_points(account.id)
        chart = charts.health_timeline(
            [(h.at, h.status) for h in reversed(history)],
            utcnow(),
            f"Health of {account} over time",
            scores=scores or None,
        )
        may_see = assignee_check()
        events = db.session.scalars(
            select(Event)
            .where(Event.account_id == account.id)
            .order_by(Event.occurred_at.desc(), Event.id.desc())
            .limit(EVENTS_SHOWN)
        ).all()
        metrics = metrics_for(account.id, utcnow())
        return self.render(
            "triage_admin/account.html",
            account=account,
            history=history,
            runs=runs,
            step_tasks=step_tasks,
            chart=chart,
            scores=scores,
            usage_chart=usage_chart(account),
            key_metrics=key_metrics(metrics),
            events=[(e, event_summary(e)) for e in events],
            open_tasks=[t for t in tasks if t.status in fmt.OPEN_TASK],
            closed_tasks=sorted(
                (t for t in tasks if t.status not in fmt.OPEN_TASK),
                key=lambda t: t.completed_at or t.created_at,
                reverse=True,
            )[:CLOSED_SHOWN],
            # A CSM may see an account yet not its manager's task.
            may_open_task={t.id for t in tasks if may_see(t.assignee)},
            show_records=current_user.role in EVERYTHING,
        )


def usage_chart(account: Account) -> Markup | None:
    """Active users, logins and seats per day over the last USAGE_DAYS (gaps where no data)."""
    today = utcnow().date()
    start = today - timedelta(days=USAGE_DAYS - 1)
    rows = {
        r.day: r
        for r in db.session.execute(
            select(DailyUsage.day, DailyUsage.active_users, DailyUsage.logins, DailyUsage.seats).where(
                DailyUsage.account_id == account.id, DailyUsage.day >= start
            )
        )
    }
    if not rows:
        return None
    days = [start + timedelta(days=i) for i in range(USAGE_DAYS)]
    series = {
        name: [getattr(rows[d], column) if d in rows else None for d in days]
        for name, column in (("active users", "active_users"), ("logins", "logins"), ("seats", "seats"))
    }
    return charts.lines([d.strftime("%d %b") for d in days], series, f"Usage of {account}, last {USAGE_DAYS} days")


def event_summary(event: Event) -> str:
    """One line about an event as received: the status change, or its properties."""
    payload = event.payload or {}
    health = payload.get("health") if isinstance(payload.get("health"), dict) else None
    if health:
        return " ".join(str(part) for part in ("to", health.get("to"), "-", health.get("reason")) if part)
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        properties = {}
    # Sorted: PostgreSQL (JSONB) does not keep the order the properties came in.
    return ", ".join(f"{key}: {value}" for key, value in sorted(properties.items(), key=lambda kv: str(kv[0]))[:6])


def score_points(account_id: str) -> list[tuple]:
    """(time, score) points of one account, oldest first, for the health chart."""
    rows = db.session.execute(
        select(HealthScore.at, HealthScore.score)
        .where(HealthScore.account_id == account_id)
        .order_by(HealthScore.at.desc())
        .limit(SCORES_LIMIT)
    ).all()
    return [(at, float(score)) for at, score in reversed(rows)]
