"""restream schedules: a start at a time, a stop at a time, a longest run

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("restreams", sa.Column("start_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("restreams", sa.Column("stop_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("restreams", sa.Column("run_for_s", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_restreams_start_at"), "restreams", ["start_at"])
    op.create_index(op.f("ix_restreams_stop_at"), "restreams", ["stop_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_restreams_stop_at"), table_name="restreams")
    op.drop_index(op.f("ix_restreams_start_at"), table_name="restreams")
    op.drop_column("restreams", "run_for_s")
    op.drop_column("restreams", "stop_at")
    op.drop_column("restreams", "start_at")
