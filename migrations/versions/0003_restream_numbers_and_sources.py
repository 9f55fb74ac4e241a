"""restream numbers, sources and surface attributes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 06:49:35.679341
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "restreams", sa.Column("number", sa.BigInteger(), sa.Identity(always=False), nullable=False)
    )
    op.add_column("restreams", sa.Column("source_id", sa.String(length=24), nullable=True))
    op.add_column(
        "restreams",
        sa.Column(
            "attributes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.create_index(op.f("ix_restreams_source_id"), "restreams", ["source_id"], unique=False)
    op.create_unique_constraint(op.f("uq_restreams_number"), "restreams", ["number"])
    op.create_foreign_key(
        op.f("fk_restreams_source_id_restreams"),
        "restreams",
        "restreams",
        ["source_id"],
        ["id"],
        ondelete="CASCADE",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("fk_restreams_source_id_restreams"), "restreams", type_="foreignkey")
    op.drop_constraint(op.f("uq_restreams_number"), "restreams", type_="unique")
    op.drop_index(op.f("ix_restreams_source_id"), table_name="restreams")
    op.drop_column("restreams", "attributes")
    op.drop_column("restreams", "source_id")
    op.drop_column("restreams", "number")
