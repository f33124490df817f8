"""sip_bindings: registered contacts of SIP phones, so registrations survive a restart.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Hand-checked against callcenter.db.models.SipBinding.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sip_bindings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("aor", sa.String(length=255), nullable=False),
        sa.Column("contact", sa.String(length=1024), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("call_id", sa.String(length=255), nullable=False),
        sa.Column("cseq", sa.Integer(), nullable=False),
        sa.Column("q", sa.Float(), nullable=True),
        sa.Column("source_transport", sa.String(length=8), nullable=False),
        sa.Column("source_host", sa.String(length=64), nullable=False),
        sa.Column("source_port", sa.Integer(), nullable=False),
        sa.Column("instance", sa.String(length=255), nullable=True),
        sa.Column("reg_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sip_bindings")),
        sa.UniqueConstraint("aor", "contact", name=op.f("uq_sip_bindings_aor")),
    )
    with op.batch_alter_table("sip_bindings") as batch_op:
        batch_op.create_index(batch_op.f("ix_sip_bindings_aor"), ["aor"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sip_bindings") as batch_op:
        batch_op.drop_index(batch_op.f("ix_sip_bindings_aor"))
    op.drop_table("sip_bindings")
