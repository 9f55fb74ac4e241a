"""restream holds and the surface that created a restream

A 5centsCDN stream's draft / disabled / soft-deleted flags lived in its surface attributes,
where only that surface saw them: another surface could start a stream 5centsCDN showed as
deleted. They are core `holds` now, which every start respects; `surface` records which
surface created a restream (rows from before this: the attribute they carried, else native).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "restreams",
        sa.Column("surface", sa.String(length=16), server_default="native", nullable=False),
    )
    op.add_column(
        "restreams",
        sa.Column(
            "holds",
            postgresql.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    op.execute(
        """
        UPDATE restreams SET
          surface = CASE attributes->>'surface'
                      WHEN 'fivecents' THEN 'fivecents' WHEN '5centscdn' THEN 'fivecents'
                      ELSE CASE WHEN attributes ? 'title' THEN 'gjirafa' ELSE 'native' END
                    END,
          holds = ARRAY(SELECT hold FROM (VALUES
                    ('draft', (attributes->>'draft')::boolean IS TRUE),
                    ('disabled', (attributes->>'disabled')::boolean IS TRUE),
                    ('deleted', COALESCE(attributes->>'deleted', '') <> '')
                  ) AS flags(hold, held) WHERE held)::varchar(16)[],
          attributes = attributes - 'draft' - 'disabled' - 'surface'
        """
    )


def downgrade() -> None:
    op.execute(
        """
        UPDATE restreams SET attributes = attributes
          || jsonb_build_object('draft', 'draft' = ANY(holds), 'disabled', 'disabled' = ANY(holds))
          || CASE WHEN surface = 'fivecents' THEN '{"surface": "fivecents"}'::jsonb
                  ELSE '{}'::jsonb END
        """
    )
    op.drop_column("restreams", "holds")
    op.drop_column("restreams", "surface")
