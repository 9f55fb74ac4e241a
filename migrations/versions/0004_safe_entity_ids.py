"""safe input and output ids in stored definitions

Until now an input's or an output's `id` was stored as the client gave it, and an output's id
names its HLS/DASH directory on the node: `../../x` named one outside the media directory.
Ids are now checked when they enter (24 hex characters, distinct per restream); this gives
every stored id that is not of that form, or repeats another of its restream, a fresh random
one, so that every stored definition reads back under the new rule.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 17:20:00
"""

import re
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SAFE = re.compile(r"^[0-9a-f]{24}$")


def _fixed(definition: dict[str, Any]) -> dict[str, Any] | None:
    """The definition with safe, distinct ids; None when it already has them."""
    changed = False
    seen: set[str] = set()
    parts = [definition.get("input"), *(definition.get("outputs") or [])]
    for part in parts:
        if not isinstance(part, dict) or "id" not in part:
            continue
        value = part["id"]
        safe = isinstance(value, str) and _SAFE.match(value.strip().lower()) is not None
        if safe and value.strip().lower() not in seen and value == value.strip().lower():
            seen.add(value)
            continue
        part["id"] = secrets.token_hex(12)
        seen.add(part["id"])
        changed = True
    return definition if changed else None


def upgrade() -> None:
    restreams = sa.table(
        "restreams", sa.column("id", sa.String), sa.column("definition", postgresql.JSONB)
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(restreams.c.id, restreams.c.definition)).all()
    for restream_id, definition in rows:
        fixed = _fixed(dict(definition))
        if fixed is not None:
            connection.execute(
                restreams.update().where(restreams.c.id == restream_id).values(definition=fixed)
            )


def downgrade() -> None:
    pass  # the old ids were unsafe: nothing to restore
