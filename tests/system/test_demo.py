"""The demo portfolio `make run` loads goes through the real pipeline and fills every page."""

from __future__ import annotations

from sqlalchemy import func, select

from app.models import Account, HealthChange, PlaybookRun, Task, User
from app.models.score import HealthScore


def test_a_small_demo_portfolio_has_history_work_and_scores(db, app):
    from app.demo import ensure_team, load_portfolio

    ensure_team("demo-password")
    events = load_portfolio(accounts=12, seed=3)
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    assert events >= 12 and count(Account) == 12 and count(User) >= 9
    assert count(HealthChange) == events
    assert count(PlaybookRun) > 0
    assert db.session.scalar(select(func.count()).where(Task.status == "open")) > 0
    assert db.session.scalar(select(func.count()).where(Task.status == "done")) > 0
    assert count(HealthScore) >= 12 * 5  # a score point every two weeks and today
    assert db.session.scalar(select(func.count()).where(Account.score.is_not(None))) == 12


def test_every_account_that_turned_red_has_the_action_plan_of_that_change(db, app):
    from app.demo import ensure_team, load_portfolio

    ensure_team("demo-password")
    load_portfolio(accounts=30, seed=5)
    red = db.session.execute(select(Account).where(Account.health_status == "red")).scalars().all()
    assert red
    for account in red:
        previous = db.session.execute(
            select(HealthChange.previous).where(
                HealthChange.account_id == account.id, HealthChange.at == account.health_since
            )
        ).scalar_one()
        if previous == "red":
            continue  # the same status again is no change: no new plan
        plans = (
            db.session.execute(
                select(PlaybookRun).where(
                    PlaybookRun.account_id == account.id,
                    PlaybookRun.playbook == "red-action-plan",
                    PlaybookRun.triggered_at == account.health_since,
                )
            )
            .scalars()
            .all()
        )
        assert len(plans) == 1, account.id
