"""The append-only event history of restreams and nodes (DESIGN §2), and following it.

Each event has a type, `<subject>.<kind>`: `restream.state` / `node.state` / `server.state` (a
change of state, `from_state` → `to_state`), `restream.input_switch` (continuity put another
input on air) and `<subject>.note` (anything else worth telling). A client follows the history
with a cursor (`page`): events in the order they were committed (`sequence`), never one
behind the cursor later. Recording an event of a project also writes its webhook deliveries, in the
same statement (a trigger, `common.webhooks`): they leave only if the change is committed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from common.db import database_now
from common.errors import FieldProblem, InvalidInput
from common.models import Event

RESTREAM = "restream"
NODE = "node"
SERVER = "server"  # a media server module (`common.lifecycle.servers`)
STATE, INPUT_SWITCH, NOTE = "state", "input_switch", "note"
TYPES = (
    f"{RESTREAM}.{STATE}",
    f"{RESTREAM}.{INPUT_SWITCH}",
    f"{RESTREAM}.{NOTE}",
    f"{NODE}.{STATE}",
    f"{NODE}.{NOTE}",
    f"{SERVER}.{STATE}",
    f"{SERVER}.{NOTE}",
)
# Held (for its transaction) by whoever gives committed events their places in the feed.
SEQUENCER_LOCK = 0x5F_E7E7_5E0  # "sf events seq"
SEQUENCED_AT_ONCE = 1000


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
    kind: str | None = None,
) -> None:
    event = Event(
        at=database_now(session),  # when the change was made, not when its transaction began
        subject_kind=subject_kind,
        subject_id=subject_id,
        reason=reason,
        from_state=from_state,
        to_state=to_state,
        project_id=project_id,
        node_name=node_name,
        generation=generation,
        kind=kind or (STATE if to_state is not None else NOTE),
    )
    session.add(event)


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


def sequence(session: Session) -> int:
    """Give the committed events that have none their places in the feed, in the order of
    their ids, after every place given before; how many. One sequencer at a time (a lock held
    to the end of its transaction; another caller skips), and what it gives is read only
    once committed: so places are committed in increasing order, and a reader's cursor never
    passes a place that could still be filled. Ids alone would not do: one is taken at the
    insert, so a transaction that took an id first and committed last would land behind a
    cursor that had already passed a later id."""
    if not session.execute(select(func.pg_try_advisory_xact_lock(SEQUENCER_LOCK))).scalar():
        return 0
    unplaced = (
        select(
            Event.id,
            func.row_number().over(order_by=Event.id).label("rank"),
        )
        .where(Event.position.is_(None))
        .order_by(Event.id)
        .limit(SEQUENCED_AT_ONCE)
        .subquery()
    )
    last = select(func.coalesce(func.max(Event.position), 0)).scalar_subquery()
    placed = session.execute(
        update(Event)
        .where(Event.id == unplaced.c.id)
        .values(position=last + unplaced.c.rank)
        .returning(Event.id)
        .execution_options(synchronize_session=False)
    ).all()
    return len(placed)


def page(
    session: Session,
    *,
    project_id: str | None,
    after: str | None,
    limit: int,
    types: Collection[str] = (),
) -> list[Event]:
    """Events placed after the cursor `after` (None: from the start), of one project (None:
    all), at most `limit`, of the `types` given (none: all), in feed order. Run `sequence` in
    a transaction of its own first: what it places is read once it is committed."""
    query = select(Event).where(Event.position.is_not(None))
    if after is not None:
        query = query.where(Event.position > _position(after))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if types:
        pairs = [tuple(t.split(".", 1)) for t in types]
        query = query.where(tuple_(Event.subject_kind, Event.kind).in_(pairs))
    return list(session.execute(query.order_by(Event.position).limit(limit)).scalars())


def end(session: Session, *, project_id: str | None) -> str | None:
    """The cursor after the newest placed event (of one project): where following from now
    starts. None if there is none."""
    query = select(func.max(Event.position))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    newest = session.execute(query).scalar()
    return None if newest is None else str(newest)


def cursor(event: Event) -> str:
    """Where a reader is after `event` (opaque to clients)."""
    return str(event.position)


def check_types(given: str | None) -> list[str]:
    """`types` as a client writes it (comma-separated), each one known."""
    wanted = [t.strip() for t in (given or "").split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TYPES]
    if unknown:
        message = f"unknown event type {unknown[0]!r}; one of {', '.join(TYPES)}"
        raise InvalidInput(message, [FieldProblem("types", message)])
    return wanted


def as_json(event: Event) -> dict[str, Any]:
    """An event as every surface shows it (the list, its stream, webhooks)."""
    return {
        "id": event.id,
        "type": f"{event.subject_kind}.{event.kind}",
        "at": event.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "subject": {"kind": event.subject_kind, "id": event.subject_id},
        "project_id": event.project_id,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "reason": event.reason,
        "node": event.node_name,
        "generation": event.generation,
    }


def check_cursor(given: str) -> None:
    """Refuse, naming `after`, what is not a cursor this API gave."""
    _position(given)


def _position(given: str) -> int:
    if not given.isdigit() or len(given) > 18:
        message = "not a cursor this API gave (an event's `cursor`, or a page's `next`)"
        raise InvalidInput(message, [FieldProblem("after", message)])
    return int(given)
