"""indexes the admin pages need at 10,000 accounts and 100,000 tasks (bench/admin_pages.py)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:10:00

"""
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_status_due_at', ['status', 'due_at'], unique=False)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_actor_at', ['actor', 'at'], unique=False)
    with op.batch_alter_table('health_scores', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_health_scores_at'), ['at'], unique=False)


def downgrade():
    with op.batch_alter_table('health_scores', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_health_scores_at'))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_actor_at')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_status_due_at')
