"""signals: daily usage rollups, first use of each feature, health score history

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-25 15:40:00

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('daily_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('active_users', sa.Integer(), nullable=True),
    sa.Column('logins', sa.Integer(), nullable=True),
    sa.Column('features', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('seats', sa.Integer(), nullable=True),
    sa.Column('new_users', sa.Integer(), nullable=False),
    sa.Column('nps_score', sa.Integer(), nullable=True),
    sa.Column('happiness', sa.Integer(), nullable=True),
    sa.Column('tickets', sa.Integer(), nullable=False),
    sa.Column('tickets_high', sa.Integer(), nullable=False),
    sa.Column('sentiment_sum', sa.Float(), nullable=False),
    sa.Column('sentiment_count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_daily_usage_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_daily_usage')),
    sa.UniqueConstraint('account_id', 'day', name='uq_daily_usage_account_day')
    )
    op.create_table('feature_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('feature', sa.String(length=200), nullable=False),
    sa.Column('first_used_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_feature_uses_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feature_uses')),
    sa.UniqueConstraint('account_id', 'feature', name='uq_feature_uses_account_feature')
    )
    op.create_table('health_scores',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=200), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('band', sa.String(length=40), nullable=False),
    sa.Column('scorecard', sa.String(length=100), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_health_scores_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_scores')),
    sa.UniqueConstraint('account_id', 'day', name='uq_health_scores_account_day')
    )


def downgrade():
    op.drop_table('health_scores')
    op.drop_table('feature_uses')
    op.drop_table('daily_usage')
