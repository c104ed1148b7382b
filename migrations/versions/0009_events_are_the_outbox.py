"""the events table is its own outbox: unprocessed events through a partial index

The separate `outbox` table cost an INSERT per event at intake and a DELETE per event in the
worker; an event with no `processed_at` says the same thing. What it counted (the sweeper's
attempts) moves to `events.sweeps`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 02:00:00

"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

UNPROCESSED = sa.text("processed_at IS NULL")


def upgrade():
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweeps', sa.Integer(), server_default='0', nullable=False))
    op.execute("UPDATE events SET sweeps = (SELECT outbox.attempts FROM outbox WHERE outbox.event_id = events.id) "
               "WHERE id IN (SELECT event_id FROM outbox)")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_unprocessed', ['id'], unique=False,
                              postgresql_where=UNPROCESSED, sqlite_where=UNPROCESSED)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_enqueued_at'))
    op.drop_table('outbox')


def downgrade():
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_outbox_event_id_events')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('event_id', name=op.f('uq_outbox_event_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_enqueued_at'), ['enqueued_at'], unique=False)
    op.execute("INSERT INTO outbox (event_id, created_at, attempts) "
               "SELECT id, received_at, sweeps FROM events WHERE processed_at IS NULL")
    op.drop_index('ix_events_unprocessed', table_name='events', postgresql_where=UNPROCESSED,
                  sqlite_where=UNPROCESSED)
    # Not a batch operation: on SQLite that recreates `events`, which every table referring to
    # it forbids. SQLite has had DROP COLUMN since 3.35.
    op.execute("ALTER TABLE events DROP COLUMN sweeps")
