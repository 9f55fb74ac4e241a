"""The append-only event history of restreams and nodes (DESIGN §2)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.db import database_now
from common.models import Event

RESTREAM = "restream"
NODE = "node"


def record(
    session: Session,
    *,
    subject_kind: str,
    subject_id: str,
    reason: str,
    from_state: str | None = None,
    to_state: str | None = None,
    project_id: str | None = None,
    node_name: str | None = None,
    generation: int | None = None,
) -> None:
    session.add(
        Event(
            at=database_now(session),  # when the change was made, not when its transaction began
            subject_kind=subject_kind,
            subject_id=subject_id,
            reason=reason,
            from_state=from_state,
            to_state=to_state,
            project_id=project_id,
            node_name=node_name,
            generation=generation,
        )
    )


def history(
    session: Session, subject_kind: str, subject_id: str, *, limit: int = 100
) -> Sequence[Event]:
    """The newest `limit` events of one subject, oldest first."""
    rows = session.execute(
        select(Event)
        .where(Event.subject_kind == subject_kind, Event.subject_id == subject_id)
        .order_by(Event.id.desc())
        .limit(limit)
    ).scalars()
    return list(reversed(list(rows)))
