"""call records, callbacks and voicemail messages.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Hand-checked against callcenter.db.models.CallRecord, Callback and VoicemailMessage. The CHECK
lists are frozen copies of models.DISPOSITIONS and CALLBACK_STATES. call_records is indexed
for the searches agents and supervisors make (by caller, customer, queue, agent, day);
ix_callbacks_state finds the pending callbacks at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('callbacks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('queue', sa.String(length=128), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('place', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('pending', 'dialling', 'done', 'failed')", name=op.f('ck_callbacks_state')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callbacks')),
    sa.UniqueConstraint('call_id', name=op.f('uq_callbacks_call_id'))
    )
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callbacks_state'), ['state'], unique=False)

    op.create_table('voicemail_messages',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('box', sa.String(length=64), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('caller', sa.String(length=64), server_default='', nullable=False),
    sa.Column('path', sa.String(length=1024), nullable=False),
    sa.Column('duration_seconds', sa.Float(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('heard', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voicemail_messages'))
    )
    with op.batch_alter_table('voicemail_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voicemail_messages_box'), ['box'], unique=False)
        batch_op.create_index(batch_op.f('ix_voicemail_messages_call_id'), ['call_id'], unique=False)

    op.create_table('call_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('caller', sa.String(length=64), server_default='', nullable=False),
    sa.Column('caller_name', sa.String(length=128), server_default='', nullable=False),
    sa.Column('dialled', sa.String(length=64), server_default='', nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('queue', sa.String(length=128), nullable=True),
    sa.Column('agent', sa.String(length=64), nullable=True),
    sa.Column('arrived_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wait_seconds', sa.Float(), nullable=True),
    sa.Column('talk_seconds', sa.Float(), nullable=True),
    sa.Column('ended_by', sa.String(length=16), nullable=True),
    sa.Column('disposition', sa.String(length=16), server_default='in-progress', nullable=False),
    sa.Column('timeline', sa.JSON(), nullable=False),
    sa.Column('notes', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("disposition IN ('in-progress', 'answered', 'abandoned', 'ivr', 'voicemail', 'callback', 'transferred', 'failed')", name=op.f('ck_call_records_disposition')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_call_records_customer_id_customers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_records')),
    sa.UniqueConstraint('call_id', name=op.f('uq_call_records_call_id'))
    )
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_call_records_agent'), ['agent'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_arrived_at'), ['arrived_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_caller'), ['caller'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_customer_id'), ['customer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_call_records_queue'), ['queue'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('call_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_call_records_queue'))
        batch_op.drop_index(batch_op.f('ix_call_records_customer_id'))
        batch_op.drop_index(batch_op.f('ix_call_records_caller'))
        batch_op.drop_index(batch_op.f('ix_call_records_arrived_at'))
        batch_op.drop_index(batch_op.f('ix_call_records_agent'))

    op.drop_table('call_records')
    with op.batch_alter_table('voicemail_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_voicemail_messages_call_id'))
        batch_op.drop_index(batch_op.f('ix_voicemail_messages_box'))

    op.drop_table('voicemail_messages')
    with op.batch_alter_table('callbacks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callbacks_state'))

    op.drop_table('callbacks')
