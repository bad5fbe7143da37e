"""live_samples: an index on (tool_id, channel, time) for the dashboard's "state of a channel at
a moment" (a shutter's last change before the window it draws), a seek instead of a scan.

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


def downgrade() -> None:
    with op.batch_alter_table('live_samples', schema=None) as batch_op:
        batch_op.drop_index('ix_live_samples_tool_channel_time')
