"""All SQL about restreams. A `project_id` of None means "every project" (farm-wide)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from common.models import Restream, Run
from common.restreams.states import PLACED_STATES, RestreamState


def _scoped(statement: Select[Restream], project_id: str | None) -> Select[Restream]:
    return statement if project_id is None else statement.where(Restream.project_id == project_id)


def get(
    session: Session, restream_id: str, project_id: str | None, *, for_update: bool = False
) -> Restream | None:
    statement = _scoped(select(Restream).where(Restream.id == restream_id), project_id)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def page(
    session: Session, project_id: str | None, *, limit: int, offset: int
) -> tuple[Sequence[Restream], int]:
    """One page of restreams, oldest first, and the total count."""
    rows = session.execute(
        _scoped(select(Restream), project_id)
        .order_by(Restream.created_at, Restream.id)
        .limit(limit)
        .offset(offset)
    ).scalars()
    total_query = select(func.count()).select_from(Restream)
    if project_id is not None:
        total_query = total_query.where(Restream.project_id == project_id)
    return list(rows), session.execute(total_query).scalar_one()


def all_in(session: Session, project_id: str | None) -> Sequence[Restream]:
    return list(
        session.execute(_scoped(select(Restream), project_id).order_by(Restream.created_at))
        .scalars()
        .all()
    )


def name_taken(
    session: Session, project_id: str, name: str, *, except_id: str | None = None
) -> bool:
    statement = select(Restream.id).where(Restream.project_id == project_id, Restream.name == name)
    if except_id is not None:
        statement = statement.where(Restream.id != except_id)
    return session.execute(statement.limit(1)).first() is not None


HOLDING_STATES = frozenset({*PLACED_STATES, RestreamState.STOPPING})


def holdings_by_node(session: Session) -> dict[str, list[Restream]]:
    """The restreams holding resources on each node: placed, or not yet stopped there."""
    rows = session.execute(
        select(Restream).where(Restream.node_name.is_not(None), Restream.state.in_(HOLDING_STATES))
    ).scalars()
    by_node: dict[str, list[Restream]] = {}
    for restream in rows:
        assert restream.node_name is not None
        by_node.setdefault(restream.node_name, []).append(restream)
    return by_node


def placed_on(session: Session, node: str, *, skip_locked: bool = False) -> Sequence[Restream]:
    """The restreams placed on `node` (starting, running, retrying), locked."""
    return list(
        session.execute(
            select(Restream)
            .where(Restream.node_name == node, Restream.state.in_(PLACED_STATES))
            .order_by(Restream.id)
            .with_for_update(skip_locked=skip_locked)
        )
        .scalars()
        .all()
    )


def run_of(session: Session, restream_id: str, generation: int) -> Run | None:
    return session.execute(
        select(Run).where(Run.restream_id == restream_id, Run.generation == generation)
    ).scalar_one_or_none()


def latest_run(session: Session, restream_id: str) -> Run | None:
    return session.execute(
        select(Run).where(Run.restream_id == restream_id).order_by(Run.id.desc()).limit(1)
    ).scalar_one_or_none()
