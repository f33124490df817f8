"""call_records.outcome: the agent's wrap-up code.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Hand-checked against callcenter.db.models.CallRecord.outcome (String(32), nullable, indexed:
supervisors and QA filter calls by it).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('call_records') as batch:
        batch.add_column(sa.Column('outcome', sa.String(length=32), nullable=True))
        batch.create_index(batch.f('ix_call_records_outcome'), ['outcome'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('call_records') as batch:
        batch.drop_index(batch.f('ix_call_records_outcome'))
        batch.drop_column('outcome')
