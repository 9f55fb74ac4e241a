"""All SQL about a restream's runs: one row per placement (generation) of it on a node, with
what its FFmpeg did there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Update, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from common.models import Run


def run_of(session: Session, restream_id: str, generation: int) -> Run | None:
    return session.execute(
        select(Run).where(Run.restream_id == restream_id, Run.generation == generation)
    ).scalar_one_or_none()


def set_once(
    restream_id: str, generation: int, unset: InstrumentedAttribute[Any], values: dict[str, Any]
) -> Update:
    """Write `values` on the run of (restream, generation) if its `unset` column is still
    NULL (`repository.lock_and_write` runs it with the restream's lock)."""
    return (
        update(Run)
        .where(Run.restream_id == restream_id, Run.generation == generation, unset.is_(None))
        .values(values)
    )
