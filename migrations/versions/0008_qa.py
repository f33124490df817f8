"""QA: scorecards, evaluations, comments pinned to moments, reviewers' queues; a recording's
legal hold, deletion tombstone and mean QA score.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23

Hand-checked against callcenter.db.models (Scorecard, Evaluation, RecordingComment,
QaAssignment, Recording). Booleans and timestamps default portably (sa.true(), sa.false(),
sa.func.now()). Evaluations and comments go with their recording row (CASCADE), which is only
ever deleted by hand: deletion keeps the row as a tombstone. ix_recordings_qa_score serves the
"score below 60" search.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('qa_assignments',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('queue', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('username', 'queue', name=op.f('pk_qa_assignments'))
    )
    op.create_table('scorecards',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), server_default='', nullable=False),
    sa.Column('questions', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scorecards')),
    sa.UniqueConstraint('name', name=op.f('uq_scorecards_name'))
    )
    op.create_table('evaluations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('scorecard_id', sa.Integer(), nullable=False),
    sa.Column('reviewer', sa.String(length=64), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_evaluations_recording_id_recordings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scorecard_id'], ['scorecards.id'], name=op.f('fk_evaluations_scorecard_id_scorecards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluations')),
    sa.UniqueConstraint('recording_id', 'scorecard_id', 'reviewer', name=op.f('uq_evaluations_recording_id'))
    )
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_evaluations_recording_id'), ['recording_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_evaluations_reviewer'), ['reviewer'], unique=False)

    op.create_table('recording_comments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=64), nullable=False),
    sa.Column('at_seconds', sa.Float(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_recording_comments_recording_id_recordings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording_comments'))
    )
    with op.batch_alter_table('recording_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recording_comments_recording_id'), ['recording_id'], unique=False)

    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('legal_hold_reason', sa.String(length=255), server_default='', nullable=False))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('qa_score', sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f('ix_recordings_qa_score'), ['qa_score'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_qa_score'))
        batch_op.drop_column('qa_score')
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('legal_hold_reason')
        batch_op.drop_column('legal_hold')

    with op.batch_alter_table('recording_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_comments_recording_id'))

    op.drop_table('recording_comments')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_evaluations_reviewer'))
        batch_op.drop_index(batch_op.f('ix_evaluations_recording_id'))

    op.drop_table('evaluations')
    op.drop_table('scorecards')
    op.drop_table('qa_assignments')
