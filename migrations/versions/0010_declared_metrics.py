"""declared metrics: what each day keeps per series, and per account its first day and latest values

- daily_usage.values: the declared series of the day (app/signals/frame.py documents an entry)
- accounts.first_day: the first day with usage data (windows start there, in event time)
- accounts.signal_latest: per series, the newest day and value seen (latest/days_since without a window)
- accounts.decision_maker_changed_at: when a contact with the decision_maker role was replaced
- accounts.score_day, score_band: the newest score's day and band (read with the account's lock,
  so a usage event needs no look-up of the score history)

Plain ADD/DROP COLUMN (not a batch recreate): on SQLite a recreate of `accounts` would break
the foreign keys that point at it, as it did for `events` (0009).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 18:40:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.add_column("daily_usage", sa.Column("values", JSON, nullable=True))
    op.add_column("accounts", sa.Column("first_day", sa.Date(), nullable=True))
    op.add_column("accounts", sa.Column("signal_latest", JSON, nullable=True))
    op.add_column("accounts", sa.Column("decision_maker_changed_at", sa.DateTime(), nullable=True))
    op.add_column("accounts", sa.Column("score_day", sa.Date(), nullable=True))
    op.add_column("accounts", sa.Column("score_band", sa.String(40), nullable=True))
    op.execute(
        "UPDATE accounts SET score_day = "
        "(SELECT max(day) FROM health_scores WHERE health_scores.account_id = accounts.id)"
    )
    op.execute(
        "UPDATE accounts SET score_band = (SELECT band FROM health_scores WHERE health_scores.account_id = accounts.id "
        "AND health_scores.day = accounts.score_day)"
    )
    # Accounts with usage already: their first day is their first rollup row.
    op.execute(
        "UPDATE accounts SET first_day = (SELECT min(day) FROM daily_usage WHERE daily_usage.account_id = accounts.id)"
    )


def downgrade():
    op.drop_column("accounts", "score_band")
    op.drop_column("accounts", "score_day")
    op.drop_column("accounts", "decision_maker_changed_at")
    op.drop_column("accounts", "signal_latest")
    op.drop_column("accounts", "first_day")
    op.drop_column("daily_usage", "values")
