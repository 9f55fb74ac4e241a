"""All SQL about nodes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from common.definitions.states import NodeState
from common.models import Node


def get(session: Session, name: str, *, for_update: bool = False) -> Node | None:
    statement = select(Node).where(Node.name == name)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


_ALL_NODES = select(Node).order_by(Node.name)  # built once: the reconciler asks every round


def all_nodes(session: Session) -> Sequence[Node]:
    return list(session.execute(_ALL_NODES).scalars().all())


def count_by_state(session: Session) -> dict[NodeState, int]:
    rows = session.execute(select(Node.state, func.count()).group_by(Node.state)).all()
    return dict(rows)


def upsert(
    session: Session, name: str, capabilities: dict[str, Any], labels: dict[str, str]
) -> Node:
    """Insert the node as active, or refresh what it advertises; returns the row, locked."""
    now = datetime.now(UTC)
    session.execute(
        insert(Node)
        .values(
            name=name,
            state=NodeState.ACTIVE,
            capabilities=capabilities,
            labels=labels,
            registered_at=now,
        )
        .on_conflict_do_update(
            index_elements=["name"],
            set_={"capabilities": capabilities, "labels": labels, "registered_at": now},
        )
    )
    node = get(session, name, for_update=True)
    assert node is not None
    session.refresh(node)
    return node
