"""live_samples: indexes for the dashboard's reads, so that their cost does not grow with the run:
(run_id, id) for "what is new since id N", (run_id, time) for "the trailing window", and
(tool_id, channel, time) for "the state of a channel at a moment" (a shutter's last change).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 01:50:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('live_samples', schema=None) as batch_op:
        batch_op.create_index('ix_live_samples_tool_channel_time', ['tool_id', 'channel', 'time'], unique=False)
        batch_op.create_index('ix_live_samples_run_id_id', ['run_id', 'id'], unique=False)
        batch_op.create_index('ix_live_samples_run_id_time', ['run_id', 'time'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('live_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_live_samples_run_id_time')
        batch_op.drop_index('ix_live_samples_run_id_id')
        batch_op.drop_index('ix_live_samples_tool_channel_time')
