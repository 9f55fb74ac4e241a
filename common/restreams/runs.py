"""All SQL about a restream's runs: one row per placement (generation) of it on a node, with
what its FFmpeg did there."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from common.models import Run


def run_of(session: Session, restream_id: str, generation: int) -> Run | None:
    return session.execute(
        select(Run).where(Run.restream_id == restream_id, Run.generation == generation)
    ).scalar_one_or_none()


def set_run_once(
    session: Session,
    restream_id: str,
    generation: int,
    unset: InstrumentedAttribute[Any],
    values: dict[str, Any],
) -> bool:
    """Write `values` on the run of (restream, generation) if its `unset` column is still
    NULL, in one statement; False if no such run had it unset."""
    result = session.execute(
        update(Run)
        .where(Run.restream_id == restream_id, Run.generation == generation, unset.is_(None))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))
