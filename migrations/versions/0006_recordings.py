"""recordings: every call's stereo recording, its state, size, hash and timeline.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Hand-checked against callcenter.db.models.Recording. The CHECK list is a frozen copy of
models.RECORDING_STATES. ix_recordings_state finds the recordings a crash left open.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='recording', nullable=False),
    sa.Column('channels', sa.Integer(), server_default='2', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Float(), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('timeline', sa.JSON(), nullable=False),
    sa.Column('failure', sa.String(length=255), server_default='', nullable=False),
    sa.Column('peaks', sa.JSON(), nullable=True),
    sa.Column('compressed_path', sa.String(length=1024), nullable=True),
    sa.Column('compressed_size_bytes', sa.Integer(), nullable=True),
    sa.Column('compressed_sha256', sa.String(length=64), nullable=True),
    sa.CheckConstraint("state IN ('recording', 'complete', 'incomplete', 'failed')", name=op.f('ck_recordings_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recordings'))
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_call_id'), ['call_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_state'))
        batch_op.drop_index(batch_op.f('ix_recordings_started_at'))
        batch_op.drop_index(batch_op.f('ix_recordings_call_id'))
    op.drop_table('recordings')
