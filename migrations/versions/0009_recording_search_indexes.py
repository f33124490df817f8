"""recording search indexes: (disposition, id), (disposition, outcome, id) on call_records;
the scored recordings (id, qa_score) instead of ix_recordings_qa_score.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23

Hand-checked against callcenter.db.models (CallRecord, Recording). The recordings search
(callcenter.services.recordings.catalogue) walks an index newest first and stops at the page's
end, so an index serves it when equal keys come in id order: the id is the last column (SQLite
appends the rowid anyway; PostgreSQL needs it said). ix_recordings_scored is partial (the few
scored rows) and led by the id: the QA score filters walk it newest first, checking the score
in the index; the plain ix_recordings_qa_score it replaces made the planner gather a score
range and sort it, or take `qa_score IS NULL` (nearly every row) as selective. Plain
create/drop index (no batch): nothing rebuilds a table. On PostgreSQL the builds lock writes to
the table for their duration (seconds at a million rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCORED = sa.text("qa_score IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_call_records_disposition", "call_records", ["disposition", "id"], unique=False
    )
    op.create_index(
        "ix_call_records_disposition_outcome",
        "call_records",
        ["disposition", "outcome", "id"],
        unique=False,
    )
    op.drop_index("ix_recordings_qa_score", table_name="recordings")
    op.create_index(
        "ix_recordings_scored",
        "recordings",
        ["id", "qa_score"],
        unique=False,
        sqlite_where=SCORED,
        postgresql_where=SCORED,
    )


def downgrade() -> None:
    op.drop_index("ix_recordings_scored", table_name="recordings")
    op.create_index("ix_recordings_qa_score", "recordings", ["qa_score"], unique=False)
    op.drop_index("ix_call_records_disposition_outcome", table_name="call_records")
    op.drop_index("ix_call_records_disposition", table_name="call_records")
