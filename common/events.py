"""The append-only event history of restreams and nodes (DESIGN §2), and following it.

Each event has a type, `<subject>.<kind>`: `restream.state` / `node.state` / `server.state` (a
change of state, `from_state` → `to_state`), `restream.input_switch` (continuity put another
input on air) and `<subject>.note` (anything else worth telling). A client follows the history
with a cursor (`page`): events in the order their transactions became final, never one behind
the cursor later. Recording an event of a project also writes its webhook deliveries, in the
same transaction (`common.webhooks.fan_out`): they leave only if the change is committed.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import cast, literal, select, text, tuple_
from sqlalchemy.orm import Session

from common import webhooks
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
# Transactions older than every one still open: their events are final.
_FINAL = text("pg_snapshot_xmin(pg_current_snapshot())")


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
    if project_id is not None:
        webhooks.fan_out(session, event, as_json)


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


def page(
    session: Session,
    *,
    project_id: str | None,
    after: str | None,
    limit: int,
    types: Collection[str] = (),
) -> list[Event]:
    """Events after the cursor `after` (None: from the start), of one project (None: all),
    at most `limit`, of the `types` given (none: all). Ordered by writing transaction, then
    id, and only those of transactions older than every one still open: an event committed
    late (a transaction that began earlier and took longer) can never land behind a cursor."""
    query = select(Event).where(Event.tx < _FINAL)
    if after is not None:
        tx, event_id = _cursor_parts(after)
        query = query.where(tuple_(Event.tx, Event.id) > tuple_(_xid8(tx), event_id))
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    if types:
        pairs = [t.split(".", 1) for t in types]
        query = query.where(tuple_(Event.subject_kind, Event.kind).in_([tuple(p) for p in pairs]))
    return list(session.execute(query.order_by(Event.tx, Event.id).limit(limit)).scalars())


def end(session: Session, *, project_id: str | None) -> str | None:
    """The cursor after the newest final event (of one project): where following from now
    starts. None if there is none."""
    query = select(Event).where(Event.tx < _FINAL)
    if project_id is not None:
        query = query.where(Event.project_id == project_id)
    newest = session.execute(query.order_by(Event.tx.desc(), Event.id.desc()).limit(1)).scalar()
    return None if newest is None else cursor(newest)


def cursor(event: Event) -> str:
    """Where a reader is after `event` (opaque to clients)."""
    return f"{event.tx}.{event.id}"


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
        "at": event.at.isoformat(),
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
    _cursor_parts(given)


def _cursor_parts(given: str) -> tuple[int, int]:
    tx, _, event_id = given.partition(".")
    if not (tx.isdigit() and event_id.isdigit()):
        message = "not a cursor this API gave (an event's `cursor`, or a page's `next`)"
        raise InvalidInput(message, [FieldProblem("after", message)])
    return int(tx), int(event_id)


def _xid8(value: int) -> Any:
    return cast(literal(str(value)), Event.tx.type)
