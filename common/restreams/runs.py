"""All SQL about a restream's runs: one row per placement (generation) of it on a node, with
what its FFmpeg did there."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.orm import Session

from common.models import Run


def run_of(session: Session, restream_id: str, generation: int) -> Run | None:
    return session.execute(
        select(Run).where(Run.restream_id == restream_id, Run.generation == generation)
    ).scalar_one_or_none()


@functools.cache
def set_once(unset: str, columns: tuple[str, ...]) -> Update:
    """Write `columns` on the run of (restream, generation) if its `unset` column is still
    NULL: bound to `run_of` (the restream), `run_generation` and `set_<column>` for each column
    (`set_once_params`). Built once for each shape; `repository.lock_and_write` runs it
    with the restream's lock."""
    table = Run.__table__.c
    return (
        update(Run)
        .where(
            Run.restream_id == bindparam("run_of"),
            Run.generation == bindparam("run_generation"),
            table[unset].is_(None),
        )
        .values({c: bindparam(f"set_{c}", type_=table[c].type) for c in columns})
    )


def set_once_params(restream_id: str, generation: int, values: dict[str, Any]) -> dict[str, Any]:
    """`set_once`'s parameters."""
    return {
        "run_of": restream_id,
        "run_generation": generation,
        **{f"set_{c}": v for c, v in values.items()},
    }
