"""The executive dashboard's figures: the handbook's questions (seed 004) as SQL.

- the breakdown of accounts by status now, and at each week's end over the last half year;
- are cancellations (changes to black) trending up or down;
- are scores trending up or down (the weekly average of the score history);
- status by plan, segment and lifecycle stage;
- which CSMs are overloaded with red accounts and overdue work.

A handful of GROUP BY queries whatever the portfolio's size; the weekly status series is
computed in the database from the health history (one window query), not per account.
Every query is limited to the signed-in user's scope (app.admin.access): a manager's team,
or everyone for CS ops and admins. They run in a worker (app/admin/dashboard_snapshot.py),
not in the page's request.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from app.admin.access import scope_accounts, scope_tasks
from app.extensions import db
from app.models import HEALTH_STATUSES, Account, HealthChange, Task, User
from app.models.score import HealthScore
from app.models.types import UTCDateTime

WEEKS = 26
TREND_WEEKS = 4
OPEN = ("open", "snoozed")
UNSET = "(not set)"
# A CSM is overloaded when their red/black accounts plus overdue tasks exceed the team's
# average by this factor (and at least OVERLOAD_MIN).
OVERLOAD_FACTOR = 1.5
OVERLOAD_MIN = 3


def week_points(now: datetime, weeks: int = WEEKS) -> list[datetime]:
    """Week ends (Monday 00:00 UTC) of the last `weeks - 1` weeks, then now."""
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return [monday - timedelta(weeks=weeks - 2 - i) for i in range(weeks - 1)] + [now]


def _bucket(column, points: list[datetime]):
    """SQL: the index of the first point at or after `column`; len(points) when later or NULL."""
    return case(*[(column <= p, i) for i, p in enumerate(points)], else_=len(points))


def status_over_time(points: list[datetime]) -> dict[str, list[int]]:
    """Accounts per status at each point, from the health history.

    Each change holds its status from its own week until the account's next change: +1 in
    the first bucket, -1 in the bucket of the next change; a running sum gives the counts.
    """
    at = HealthChange.at
    following = func.lead(at, type_=UTCDateTime()).over(
        partition_by=HealthChange.account_id, order_by=(at, HealthChange.id)
    )
    held = scope_accounts(
        select(HealthChange.status.label("status"), at.label("at"), following.label("until")).join(
            Account, Account.id == HealthChange.account_id
        )
    ).subquery()
    n = len(points)
    # Buckets computed in a subquery and grouped by name: PostgreSQL does not see two CASE
    # expressions with their own bound parameters as the same GROUP BY expression.
    spans = select(
        held.c.status.label("status"),
        _bucket(held.c.at, points).label("start"),
        _bucket(held.c.until, points).label("stop"),
    ).subquery()
    rows = db.session.execute(
        select(spans.c.status, spans.c.start, spans.c.stop, func.count()).group_by(
            spans.c.status, spans.c.start, spans.c.stop
        )
    ).all()
    delta = {status: [0] * (n + 1) for status in HEALTH_STATUSES}
    for status, start, end, count in rows:
        if status not in delta or start >= n:
            continue
        delta[status][start] += count
        if end < n:
            delta[status][end] -= count
    series = {}
    for status in HEALTH_STATUSES:
        running, values = 0, []
        for i in range(n):
            running += delta[status][i]
            values.append(running)
        series[status] = values
    return series


def cancellations(points: list[datetime]) -> list[int]:
    """Accounts that turned black in each week (the first bucket: the week before points[0])."""
    n = len(points)
    since = points[0] - timedelta(weeks=1)
    turned = scope_accounts(
        select(_bucket(HealthChange.at, points).label("week"))
        .join(Account, Account.id == HealthChange.account_id)
        .where(
            HealthChange.status == "black",
            HealthChange.at > since,
            or_(HealthChange.previous.is_(None), HealthChange.previous != "black"),
        )
    ).subquery()
    rows = db.session.execute(select(turned.c.week, func.count()).group_by(turned.c.week)).all()
    counts = [0] * n
    for index, count in rows:
        if index < n:
            counts[index] += count
    return counts


def trend(values: list[float], weeks: int = TREND_WEEKS) -> dict:
    """The last `weeks` against the `weeks` before: direction and both sums."""
    recent, before = sum(values[-weeks:]), sum(values[-2 * weeks : -weeks])
    direction = "up" if recent > before else "down" if recent < before else "flat"
    return {"direction": direction, "recent": recent, "before": before, "weeks": weeks}


def moving_average(values: list[float], window: int = TREND_WEEKS) -> list[float]:
    out = []
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        out.append(sum(chunk) / len(chunk))
    return out


def breakdowns() -> dict[str, list[tuple[str, dict[str, int]]]]:
    """Status counts by plan, segment and lifecycle stage (one grouped query)."""
    rows = db.session.execute(
        scope_accounts(
            select(
                Account.plan, Account.segment, Account.lifecycle_stage, Account.health_status, func.count()
            ).group_by(Account.plan, Account.segment, Account.lifecycle_stage, Account.health_status)
        )
    ).all()
    by: dict[str, defaultdict[str, defaultdict[str, int]]] = {
        "plan": defaultdict(lambda: defaultdict(int)),
        "segment": defaultdict(lambda: defaultdict(int)),
        "lifecycle stage": defaultdict(lambda: defaultdict(int)),
    }
    for plan, segment, stage, status, count in rows:
        for key, value in (("plan", plan), ("segment", segment), ("lifecycle stage", stage)):
            by[key][value or UNSET][status or "unknown"] += count

    def worst_first(item):  # the rows with the largest share of red and black on top
        name, counts = item
        total = sum(counts.values()) or 1
        return (-(counts.get("red", 0) + counts.get("black", 0)) / total, name)

    return {
        key: sorted(((name, dict(counts)) for name, counts in groups.items()), key=worst_first)
        for key, groups in by.items()
    }


def csm_load(now: datetime) -> list[dict]:
    """Per CSM: accounts by status and open, overdue and urgent tasks; overloaded ones flagged."""
    people: dict[str, dict] = defaultdict(
        lambda: {"accounts": defaultdict(int), "open": 0, "overdue": 0, "urgent": 0, "arr_at_risk": 0}
    )
    for csm, status, count, arr in db.session.execute(
        scope_accounts(
            select(Account.csm, Account.health_status, func.count(), func.sum(Account.arr))
            .where(Account.csm.is_not(None))
            .group_by(Account.csm, Account.health_status)
        )
    ):
        assert csm is not None  # the query skips accounts without a CSM
        email = csm.lower()
        people[email]["accounts"][status or "unknown"] += count
        if status in ("red", "black"):
            people[email]["arr_at_risk"] += float(arr or 0)
    overdue = func.sum(case((and_(Task.due_at.is_not(None), Task.due_at < now), 1), else_=0))
    urgent = func.sum(case((Task.priority == "urgent", 1), else_=0))
    # Grouped by the stored e-mail (the index's order), folded to lower case here.
    for email, open_count, overdue_count, urgent_count in db.session.execute(
        scope_tasks(
            select(Task.assignee, func.count(), overdue, urgent)
            .where(Task.status.in_(OPEN), Task.assignee.is_not(None))
            .group_by(Task.assignee)
        )
    ):
        person = people[email.lower()]
        person["open"] += open_count
        person["overdue"] += overdue_count or 0
        person["urgent"] += urgent_count or 0
    users = {u.email.lower(): u for u in db.session.scalars(select(User).where(User.role.in_(("csm", "manager"))))}
    rows = []
    for email, person in people.items():
        user = users.get(email)
        accounts = person["accounts"]
        red = accounts.get("red", 0) + accounts.get("black", 0)
        if not sum(accounts.values()) and (user is None or user.role != "csm"):
            continue  # a manager's own tasks, not a portfolio
        rows.append(
            {
                "email": email,
                "name": (user.name if user and user.name else email),
                "accounts": dict(accounts),
                "total": sum(accounts.values()),
                "red": red,
                "open": person["open"],
                "overdue": person["overdue"],
                "urgent": person["urgent"],
                "arr_at_risk": person["arr_at_risk"],
                "load": red + person["overdue"],
            }
        )
    if rows:
        average = sum(r["load"] for r in rows) / len(rows)
        for r in rows:
            r["overloaded"] = r["load"] >= max(OVERLOAD_MIN, OVERLOAD_FACTOR * average)
    rows.sort(key=lambda r: (-r["load"], r["email"]))
    return rows


def status_now() -> dict[str, dict]:
    rows = db.session.execute(
        scope_accounts(
            select(Account.health_status, func.count(), func.sum(Account.arr), func.avg(Account.score)).group_by(
                Account.health_status
            )
        )
    ).all()
    return {
        status or "unknown": {
            "count": count,
            "arr": float(arr or 0),
            "score": None if score is None else round(float(score)),
        }
        for status, count, arr, score in rows
    }


def score_summary() -> dict:
    """The current scores: how many accounts have one, and their average."""
    scored, average = db.session.execute(
        scope_accounts(select(func.count(Account.score), func.avg(Account.score)).select_from(Account))
    ).one()
    return {"scored": scored, "average": None if average is None else round(float(average), 1)}


def weekly_scores(points: list[datetime]) -> list[float | None]:
    """The average of the scores computed in each week (None for a week without any)."""
    n = len(points)
    scored = scope_accounts(
        select(_bucket(HealthScore.at, points).label("week"), HealthScore.score.label("score"))
        .join(Account, Account.id == HealthScore.account_id)
        .where(HealthScore.at > points[0] - timedelta(weeks=1))
    ).subquery()
    rows = db.session.execute(select(scored.c.week, func.avg(scored.c.score)).group_by(scored.c.week)).all()
    averages: list[float | None] = [None] * n
    for index, average in rows:
        if index < n and average is not None:
            averages[index] = round(float(average), 1)
    return averages
