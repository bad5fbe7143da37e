"""ingest index, sightings, live buffer

Ingest events get what the content is (kind, time span, rows, channels, its Parquet copy) and
are no longer tied to one run; file_sightings records where bytes were seen; growth runs get
their segmentation, input fingerprints and findings; live_samples buffers runs in progress.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 18:36:54.357236
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('live_samples',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('tool_id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('channel', sa.String(length=128), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_samples'))
    )
    with op.batch_alter_table('live_samples', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_samples_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_samples_time'), ['time'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_samples_tool_id'), ['tool_id'], unique=False)

    op.create_table('file_sightings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('path', sa.String(length=2048), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('mtime_ns', sa.BigInteger(), nullable=False),
    sa.Column('extends_previous', sa.Boolean(), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['ingest_events.id'], name=op.f('fk_file_sightings_event_id_ingest_events'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_sightings'))
    )
    with op.batch_alter_table('file_sightings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_file_sightings_path'), ['path'], unique=False)

    with op.batch_alter_table('growth_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('wafer', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('segmented_by', sa.String(length=16), nullable=False, server_default='recipe'))
        batch_op.add_column(sa.Column('input_fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('ingested_fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('findings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, server_default='[]'))

    with op.batch_alter_table('ingest_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('time_start', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('time_end', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('rows', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('channels', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('lake_path', sa.String(length=2048), nullable=True))
        batch_op.alter_column('size_bytes',
               existing_type=sa.INTEGER(),
               type_=sa.BigInteger(),
               existing_nullable=False)
        batch_op.create_index(batch_op.f('ix_ingest_events_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_ingest_events_tool_id'), ['tool_id'], unique=False)
        batch_op.drop_constraint(batch_op.f('fk_ingest_events_run_id_growth_runs'), type_='foreignkey')

    with op.batch_alter_table('layers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='layer'))
        batch_op.add_column(sa.Column('label', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('open_sources', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False, server_default='[]'))



def downgrade() -> None:
    with op.batch_alter_table('layers', schema=None) as batch_op:
        batch_op.drop_column('open_sources')
        batch_op.drop_column('label')
        batch_op.drop_column('kind')

    with op.batch_alter_table('ingest_events', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_ingest_events_run_id_growth_runs'), 'growth_runs', ['run_id'], ['id'])
        batch_op.drop_index(batch_op.f('ix_ingest_events_tool_id'))
        batch_op.drop_index(batch_op.f('ix_ingest_events_kind'))
        batch_op.alter_column('size_bytes',
               existing_type=sa.BigInteger(),
               type_=sa.INTEGER(),
               existing_nullable=False)
        batch_op.drop_column('lake_path')
        batch_op.drop_column('channels')
        batch_op.drop_column('rows')
        batch_op.drop_column('time_end')
        batch_op.drop_column('time_start')
        batch_op.drop_column('kind')

    with op.batch_alter_table('growth_runs', schema=None) as batch_op:
        batch_op.drop_column('findings')
        batch_op.drop_column('ingested_fingerprint')
        batch_op.drop_column('input_fingerprint')
        batch_op.drop_column('segmented_by')
        batch_op.drop_column('wafer')

    with op.batch_alter_table('file_sightings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_file_sightings_path'))

    op.drop_table('file_sightings')
    with op.batch_alter_table('live_samples', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_samples_tool_id'))
        batch_op.drop_index(batch_op.f('ix_live_samples_time'))
        batch_op.drop_index(batch_op.f('ix_live_samples_run_id'))

    op.drop_table('live_samples')
