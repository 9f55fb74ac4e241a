"""restream reservations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 05:37:15.411909
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "restreams",
        sa.Column("reserved_millicores", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("restreams", sa.Column("u30_device", sa.Integer(), nullable=True))
    op.add_column(
        "restreams", sa.Column("u30_load", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.add_column("restreams", sa.Column("listen_port", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("restreams", "listen_port")
    op.drop_column("restreams", "u30_load")
    op.drop_column("restreams", "u30_device")
    op.drop_column("restreams", "reserved_millicores")
