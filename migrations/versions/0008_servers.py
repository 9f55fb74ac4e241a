"""media server modules (SRT and RTMP servers), and the server a restream reads

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 01:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16, create_constraint=True)


def upgrade() -> None:
    op.create_table(
        "servers",
        sa.Column("id", sa.String(24), nullable=False),
        sa.Column("project_id", sa.String(24), nullable=False),
        sa.Column("kind", _enum("server_kind", "srt", "rtmp"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("node_name", sa.String(128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("run_node", sa.String(128), nullable=True),
        sa.Column(
            "run_state",
            _enum("server_run_state", "stopped", "pending", "starting", "running", "failed"),
            nullable=True,
        ),
        sa.Column("run_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="RESTRICT",
                                name=op.f("fk_servers_project_id_projects")),
        sa.ForeignKeyConstraint(["node_name"], ["nodes.name"], ondelete="SET NULL",
                                name=op.f("fk_servers_node_name_nodes")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        sa.UniqueConstraint("project_id", "kind", "name", name="uq_servers_project_kind_name"),
    )  # fmt: skip
    op.create_index(op.f("ix_servers_project_id"), "servers", ["project_id"])
    op.create_index(op.f("ix_servers_node_name"), "servers", ["node_name"])
    op.add_column("restreams", sa.Column("server_id", sa.String(24), nullable=True))
    op.create_index(op.f("ix_restreams_server_id"), "restreams", ["server_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_restreams_server_id"), table_name="restreams")
    op.drop_column("restreams", "server_id")
    op.drop_table("servers")
