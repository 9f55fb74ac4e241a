"""restream state `waiting`: placed, but no media flows (its source is lost)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("idle", "pending", "starting", "running", "retrying", "failed", "recovering", "stopping")
AFTER = (*BEFORE, "waiting")


def _allow(states: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_restreams_restream_state"), "restreams", type_="check")
    listed = ", ".join(f"'{state}'" for state in states)
    op.create_check_constraint("restream_state", "restreams", f"state IN ({listed})")


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    op.execute("UPDATE restreams SET state = 'starting' WHERE state = 'waiting'")
    _allow(BEFORE)
