"""a restream's phase (the control plane's) apart from its run (its worker's)

`state` was written by the control plane and the workers alike. It becomes two records:
`phase` (idle, pending, placed, stopping, recovering), written only by the control plane, and
the run of the current generation (`run_state`: starting, running, waiting, retrying, failed,
ended), written only from its worker's reports. What surfaces show is computed from both
(`common.definitions.states.shown`), so the `state` column goes.

Rows carry over: a placed state becomes phase `placed` with the run it named (a `starting`
one: no report yet); `failed` becomes phase `idle` with a failed run of its generation.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHASES = ("idle", "pending", "placed", "stopping", "recovering")
RUNS = ("starting", "running", "waiting", "retrying", "failed", "ended")
STATES = (
    "idle", "pending", "starting", "running", "retrying", "failed", "recovering", "stopping",
    "waiting",
)  # fmt: skip


def _listed(values: Sequence[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def upgrade() -> None:
    op.add_column(
        "restreams",
        sa.Column(
            "phase",
            sa.Enum(*PHASES, name="restream_phase", native_enum=False, length=16,
                    create_constraint=True),
            nullable=True,
        ),
    )  # fmt: skip
    op.add_column("restreams", sa.Column("phase_reason", sa.Text(), nullable=True))
    op.add_column(
        "restreams",
        sa.Column(
            "phase_changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column(
        "restreams",
        sa.Column(
            "run_state",
            sa.Enum(*RUNS, name="run_state", native_enum=False, length=16, create_constraint=True),
            nullable=True,
        ),
    )
    op.add_column("restreams", sa.Column("run_generation", sa.Integer(), nullable=True))
    op.add_column("restreams", sa.Column("run_reason", sa.Text(), nullable=True))
    op.add_column(
        "restreams", sa.Column("run_changed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.execute(
        """
        UPDATE restreams SET
          phase = CASE
                    WHEN state IN ('starting', 'running', 'waiting', 'retrying') THEN 'placed'
                    WHEN state = 'failed' THEN 'idle'
                    ELSE state
                  END,
          phase_reason = state_reason,
          phase_changed_at = state_changed_at,
          run_state = CASE WHEN state IN ('running', 'waiting', 'retrying', 'failed')
                           THEN state END,
          run_generation = CASE WHEN state IN ('running', 'waiting', 'retrying', 'failed')
                                THEN generation END,
          run_reason = CASE WHEN state IN ('running', 'waiting', 'retrying', 'failed')
                            THEN state_reason END,
          run_changed_at = CASE WHEN state IN ('running', 'waiting', 'retrying', 'failed')
                                THEN state_changed_at END
        """
    )
    op.alter_column("restreams", "phase", nullable=False)
    op.create_index(op.f("ix_restreams_phase"), "restreams", ["phase"], unique=False)
    op.drop_index(op.f("ix_restreams_state"), table_name="restreams")
    op.drop_constraint(op.f("ck_restreams_restream_state"), "restreams", type_="check")
    op.drop_column("restreams", "state")
    op.drop_column("restreams", "state_reason")
    op.drop_column("restreams", "state_changed_at")


def downgrade() -> None:
    op.add_column("restreams", sa.Column("state", sa.String(length=16), nullable=True))
    op.add_column("restreams", sa.Column("state_reason", sa.Text(), nullable=True))
    op.add_column(
        "restreams",
        sa.Column(
            "state_changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute(
        """
        UPDATE restreams SET
          state = CASE
                    WHEN phase = 'placed' THEN
                      CASE WHEN run_generation = generation
                                AND run_state IN ('running', 'waiting', 'retrying', 'failed')
                           THEN run_state ELSE 'starting' END
                    WHEN phase = 'idle' AND active AND run_generation = generation
                         AND run_state = 'failed' THEN 'failed'
                    ELSE phase
                  END,
          state_reason = COALESCE(run_reason, phase_reason),
          state_changed_at = phase_changed_at
        """
    )
    op.alter_column("restreams", "state", nullable=False)
    op.create_check_constraint("restream_state", "restreams", f"state IN ({_listed(STATES)})")
    op.create_index(op.f("ix_restreams_state"), "restreams", ["state"], unique=False)
    op.drop_index(op.f("ix_restreams_phase"), table_name="restreams")
    for column in ("phase", "phase_reason", "phase_changed_at", "run_state", "run_generation",
                   "run_reason", "run_changed_at"):  # fmt: skip
        op.drop_column("restreams", column)
