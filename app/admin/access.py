"""Who may see what in the admin.

Roles (app.models.user.ROLES): a CSM sees their own tasks and accounts; a manager sees
theirs and those of the people whose `manager_email` is theirs; CS ops and admins see all.
E-mails are compared case-insensitively: CRMs do not agree on case.

The `*_for(user, ...)` functions take the user; the API applies them to the user of a personal
token (app/api/auth.py). The others apply them to the signed-in admin user.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, Self, TypeVar

from flask import abort, g, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import ColumnElement, Select, String, and_, cast, func, or_, select, text
from werkzeug.wrappers import Response

from app.extensions import db
from app.models import Account, AuditEntry, PlaybookRun, Task, User

EVERYTHING = ("csops", "admin")
OPERATORS = ("manager", "csops", "admin")  # may see the queues


class Filterable(Protocol):
    """What the scoping functions narrow: a `select()` or a legacy Query (Flask-Admin's lists)."""

    def filter(self, *criteria: ColumnElement[bool]) -> Self: ...


Q = TypeVar("Q", bound=Filterable)


def _reports(user: User) -> Select[str]:
    """The lower-case e-mails of `user`'s reports (people whose manager they are), as a subquery."""
    return select(func.lower(User.email)).where(func.lower(User.manager_email) == user.email.lower())


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


def _distinct(column) -> Sequence[str]:
    """The distinct values of an indexed column by a loose index scan: one index seek per value
    (SELECT DISTINCT reads the whole index: 60 ms for 100,000 tasks on PostgreSQL)."""
    table, name = column.table.name, column.name  # from the model, never from a request
    return db.session.scalars(
        text(
            f'WITH RECURSIVE seen(v) AS (SELECT min("{name}") FROM "{table}" '
            f'UNION ALL SELECT (SELECT min("{name}") FROM "{table}" WHERE "{name}" > seen.v) FROM seen '
            f"WHERE seen.v IS NOT NULL) SELECT v FROM seen WHERE v IS NOT NULL"
        )
    ).all()


# -- the rules, for any user (the admin passes the signed-in user, the API its token's user) --


def team_emails_for(user: User) -> list[str] | None:
    """Lower-case e-mails whose work `user` may see; None means everyone's. Kept for the request."""
    if user.role in EVERYTHING:
        return None
    teams = g.setdefault("_triage_teams", {})
    me = user.email.lower()
    if me not in teams:
        team = [me]
        if user.role == "manager":
            team += db.session.scalars(_reports(user))
        teams[me] = team
    return teams[me]


def scope_tasks_for(user: User, query: Q) -> Q:
    """`query` (over Task) narrowed to the tasks `user` may see."""
    team = team_emails_for(user)
    if team is None:  # everyone's
        return query
    return query.filter(Task.assignee.in_(_spellings(Task.assignee, team)))


def scope_accounts_for(user: User, query: Q) -> Q:
    """`query` (over Account) narrowed to the accounts `user` may see: their team's CSMs', and
    for a manager also the accounts whose manager they are."""
    team = team_emails_for(user)
    if team is None:  # everyone's
        return query
    condition: ColumnElement[bool] = Account.csm.in_(_spellings(Account.csm, team))
    if user.role == "manager":
        condition = condition | Account.manager.in_(_spellings(Account.manager, [user.email.lower()]))
    return query.filter(condition)


def scope_audit_for(user: User, query: Q) -> Q:
    """`query` (over AuditEntry) narrowed to what `user` may read: entries about tasks, runs and
    accounts in their scope, and rule switches (managers read the Rules page). Entries about
    people and tokens stay with CS ops and admins."""
    if user.role in EVERYTHING:
        return query
    accounts = scope_accounts_for(user, select(Account.id))
    tasks = scope_tasks_for(user, select(cast(Task.id, String)))
    runs = select(cast(PlaybookRun.id, String)).where(PlaybookRun.account_id.in_(accounts))
    kind, key = AuditEntry.object_type, AuditEntry.object_id
    return query.filter(
        or_(
            and_(kind == "task", key.in_(tasks)),
            and_(kind == "account", key.in_(accounts)),
            and_(kind == "run", key.in_(runs)),
            kind == "rule",
        )
    )


def assignee_check_for(user: User) -> Callable[[str | None], bool]:
    """A predicate over e-mails: may `user` see this person's work? (One query at most.)"""
    team = team_emails_for(user)
    return lambda assignee: team is None or (assignee or "").lower() in team


def may_see_task_for(user: User, task: Task) -> bool:
    return assignee_check_for(user)(task.assignee)


def may_see_account_for(user: User, account: Account) -> bool:
    if user.role == "manager" and (account.manager or "").lower() == user.email.lower():
        return True
    return assignee_check_for(user)(account.csm)


# -- the same for the signed-in admin user (flask_login.current_user) ------------------------


def team_emails() -> list[str] | None:
    """Lower-case e-mails whose work the signed-in user may see; None means everyone's."""
    return team_emails_for(current_user)


def scope_tasks(query: Q) -> Q:
    return scope_tasks_for(current_user, query)


def scope_accounts(query: Q) -> Q:
    return scope_accounts_for(current_user, query)


def assignee_check() -> Callable[[str | None], bool]:
    """A predicate over e-mails: may the signed-in user see this person's work? (One query at most.)"""
    return assignee_check_for(current_user)


def may_see_assignee(assignee: str | None) -> bool:
    return assignee_check()(assignee)


def may_see_task(task: Task) -> bool:
    return may_see_task_for(current_user, task)


def may_see_account(account: Account) -> bool:
    return may_see_account_for(current_user, account)


class Protected:
    """Mixin for admin views: sign-in required, optionally one of `roles`."""

    roles: tuple[str, ...] | None = None  # None: every signed-in user

    def is_accessible(self) -> bool:
        if not current_user.is_authenticated:
            return False
        return self.roles is None or current_user.role in self.roles

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Response:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(403)
