"""Rules: every loaded rule, whether it runs, how often it fired, and the switches CS ops use.

Enable / Disable override the file's `enabled:`; Resume lifts the pause the brake set when
a rule went over its budget. Each writes a RuleState and an audit entry. Managers may look,
CS ops and admins may switch.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from app import catalog
from app.admin.access import EVERYTHING, OPERATORS
from app.admin.views import AdminView
from app.extensions import db
from app.matching.enforcer import is_enabled, switch
from app.models import PlaybookRun, RuleFiring
from app.models.rule_state import RuleState
from app.models.types import utcnow


def _fire_counts(days: int) -> dict[str, int]:
    since = utcnow() - timedelta(days=days)
    rows = db.session.execute(
        select(RuleFiring.rule, func.count(RuleFiring.id))
        .where(RuleFiring.fired_at >= since, RuleFiring.outcome == "launched")
        .group_by(RuleFiring.rule)
    ).all()
    return dict(rows)


# Firings that did not launch because something was wrong (not a throttle or an open run).
ERROR_OUTCOMES = ("param_error", "braked")


def _last_errors() -> dict[str, dict]:
    """Per rule, the newest of: a firing refused for an error (its detail), or a run it
    launched that failed (the run's note). Two grouped look-ups, whatever the history's size."""
    errors: dict[str, dict] = {}
    newest_firings = (
        select(func.max(RuleFiring.id)).where(RuleFiring.outcome.in_(ERROR_OUTCOMES)).group_by(RuleFiring.rule)
    )
    for firing in db.session.scalars(select(RuleFiring).where(RuleFiring.id.in_(newest_firings))):
        errors[firing.rule] = {
            "at": firing.fired_at,
            "text": f"{firing.outcome}: {firing.detail or ''}".strip(": "),
            "run_id": None,
        }
    newest_runs = (
        select(func.max(PlaybookRun.id))
        .where(PlaybookRun.status == "failed", PlaybookRun.rule.is_not(None))
        .group_by(PlaybookRun.rule)
    )
    for run in db.session.scalars(select(PlaybookRun).where(PlaybookRun.id.in_(newest_runs))):
        rule, at = run.rule, run.finished_at or run.started_at
        assert rule is not None  # the query takes only runs that a rule launched
        if rule not in errors or errors[rule]["at"] < at:
            errors[rule] = {"at": at, "text": f"run failed: {run.status_note or ''}".strip(": "), "run_id": run.id}
    return errors


class RulesView(AdminView):
    roles = OPERATORS  # managers read; CS ops and admins switch (may_switch)

    def may_switch(self) -> bool:
        return current_user.is_authenticated and current_user.role in EVERYTHING

    @expose("/")
    def index(self) -> str:
        live = catalog.current()
        states = {state.rule: state for state in db.session.scalars(select(RuleState))}
        week, month, errors = _fire_counts(7), _fire_counts(30), _last_errors()
        rows = []
        for rule in live.ruleset.rules:
            state = states.get(rule.name)
            rows.append(
                {
                    "rule": rule,
                    "state": state,
                    "enabled": is_enabled(rule, state),
                    "overridden": state is not None and state.enabled is not None and state.enabled != rule.enabled,
                    "paused": state is not None and state.paused_at is not None,
                    "fires_7d": week.get(rule.name, 0),
                    "fires_30d": month.get(rule.name, 0),
                    "last_error": errors.get(rule.name),
                }
            )
        error, error_at = catalog.reload_error()
        return self.render(
            "triage_admin/rules.html",
            rows=rows,
            version=live.ruleset.version,
            loaded_at=live.loaded_at,
            reload_error=error,
            reload_error_at=error_at,
            may_switch=self.may_switch(),
        )

    def _switch(self, action: str) -> Response:
        if not self.may_switch():
            abort(403)
        name = request.form.get("rule", "")
        rule = catalog.current().ruleset.by_name(name)
        if rule is None:
            abort(404, f"no rule {name!r}")
        summary = switch(name, action, current_user.email)
        if summary is None:
            flash(f"Rule {name} is not paused.", "info")
            db.session.rollback()
            return redirect(url_for(".index"))
        db.session.commit()
        flash(summary + ".", "success")
        return redirect(url_for(".index"))

    @expose("/enable", methods=["POST"])
    def enable(self) -> Response:
        return self._switch("enable")

    @expose("/disable", methods=["POST"])
    def disable(self) -> Response:
        return self._switch("disable")

    @expose("/resume", methods=["POST"])
    def resume(self) -> Response:
        return self._switch("resume")
