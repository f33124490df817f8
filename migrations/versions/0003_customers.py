"""customers: callers the contact center knows, their phone numbers (E.164) and notes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Hand-checked against callcenter.db.models.Customer, CustomerPhone and CustomerNote.
ix_customer_phones_e164 is the caller-ID lookup index (one B-tree probe per incoming call,
also with a million customers); the unique (customer_id, e164) constraint's own index serves
"the numbers of this customer" and the ON DELETE CASCADE from customers.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("company", sa.String(length=200), server_default="", nullable=False),
        sa.Column("tier", sa.String(length=16), server_default="regular", nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        # Frozen copy of models.TIERS: a migration must not change when the model does.
        sa.CheckConstraint(
            "tier IN ('regular', 'silver', 'gold', 'vip')", name=op.f("ck_customers_tier")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_table(
        "customer_phones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("e164", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=32), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_phones_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_phones")),
        sa.UniqueConstraint(
            "customer_id", "e164", name=op.f("uq_customer_phones_customer_id")
        ),
    )
    with op.batch_alter_table("customer_phones") as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_phones_e164"), ["e164"], unique=False)
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), server_default="note", nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        # Frozen copy of models.NOTE_KINDS.
        sa.CheckConstraint(
            "kind IN ('note', 'complaint', 'case')", name=op.f("ck_customer_notes_kind")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_notes_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_notes")),
    )
    with op.batch_alter_table("customer_notes") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_notes_customer_id"), ["customer_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_notes") as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_notes_customer_id"))
    op.drop_table("customer_notes")
    with op.batch_alter_table("customer_phones") as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_phones_e164"))
    op.drop_table("customer_phones")
    op.drop_table("customers")
