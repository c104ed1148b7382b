"""Who may see what in the admin.

Roles (app.models.user.ROLES): a CSM sees their own tasks and accounts; a manager sees
theirs and those of the people whose `manager_email` is theirs; CS ops and admins see all.
E-mails are compared case-insensitively: CRMs do not agree on case.
"""
from __future__ import annotations

from flask import abort, g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Account, Task, User

EVERYTHING = ("csops", "admin")
OPERATORS = ("manager", "csops", "admin")  # may see the queues


def _me() -> str:
    return current_user.email.lower()


def _reports():
    """The lower-case e-mails of the signed-in manager's reports, as a subquery."""
    return select(func.lower(User.email)).where(func.lower(User.manager_email) == _me())


def _spellings(column, emails: list[str]) -> list[str]:
    """The values of `column` as stored that equal one of `emails` ignoring case.

    `lower(column) = ...` cannot use the column's index and scans the table; the distinct
    stored values are few (one per person) and come from the index, so the page's queries
    can then use `column IN (...)` on the index. Kept for the request.
    """
    cache = g.setdefault("_triage_spellings", {})
    key = (str(column), tuple(emails))
    if key not in cache:
        wanted = set(emails)
        cache[key] = sorted(value for value in _distinct(column) if value.lower() in wanted)
    return cache[key]


def _distinct(column) -> list[str]:
    """The distinct values of an indexed column by a loose index scan: one index seek per value
    (SELECT DISTINCT reads the whole index: 60 ms for 100,000 tasks on PostgreSQL)."""
    table, name = column.table.name, column.name  # from the model, never from a request
    return db.session.scalars(text(
        f'WITH RECURSIVE seen(v) AS (SELECT min("{name}") FROM "{table}" '
        f'UNION ALL SELECT (SELECT min("{name}") FROM "{table}" WHERE "{name}" > seen.v) FROM seen '
        f'WHERE seen.v IS NOT NULL) SELECT v FROM seen WHERE v IS NOT NULL'
    )).all()


def _sees(column):
    """SQL condition: `column` (an e-mail) is the signed-in user's or, for a manager, a report's."""
    return column.in_(_spellings(column, team_emails()))


def team_emails() -> list[str] | None:
    """Lower-case e-mails whose work the signed-in user may see; None means everyone's."""
    if current_user.role in EVERYTHING:
        return None
    if "_triage_team" not in g:
        team = [_me()]
        if current_user.role == "manager":
            team += db.session.scalars(_reports())
        g._triage_team = team
    return g._triage_team


def scope_tasks(query):
    return query if current_user.role in EVERYTHING else query.filter(_sees(Task.assignee))


def scope_accounts(query):
    if current_user.role in EVERYTHING:
        return query
    condition = _sees(Account.csm)
    if current_user.role == "manager":
        condition = condition | Account.manager.in_(_spellings(Account.manager, [_me()]))
    return query.filter(condition)


def assignee_check():
    """A predicate over e-mails: may the signed-in user see this person's work? (One query at most.)"""
    team = team_emails()
    return lambda assignee: team is None or (assignee or "").lower() in team


def may_see_assignee(assignee: str | None) -> bool:
    return assignee_check()(assignee)


def may_see_task(task: Task) -> bool:
    return may_see_assignee(task.assignee)


def may_see_account(account: Account) -> bool:
    if current_user.role == "manager" and (account.manager or "").lower() == _me():
        return True
    return may_see_assignee(account.csm)


class Protected:
    """Mixin for admin views: sign-in required, optionally one of `roles`."""

    roles: tuple[str, ...] | None = None  # None: every signed-in user

    def is_accessible(self) -> bool:
        if not current_user.is_authenticated:
            return False
        return self.roles is None or current_user.role in self.roles

    def inaccessible_callback(self, name, **kwargs):
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)
