"""Control messages leave only after the database commit (DESIGN §3).

Services call `enqueue(session, message)`; the message waits in the session and is handed
to the sender once the transaction commits, or dropped if it rolls back. A worker therefore
never hears of a row that does not exist, and a failed request sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

log = logging.getLogger(__name__)

_OUTBOX_KEY = "streamfleet.outbox"
_SAVEPOINTS_KEY = "streamfleet.outbox.savepoints"  # savepoint -> the outbox's length at its begin


@dataclass(frozen=True)
class ControlMessage:
    """A short, idempotent instruction for a worker: a Celery task name, its arguments, a queue."""

    task: str
    queue: str
    kwargs: dict[str, Any] = field(default_factory=dict)


Sender = Callable[[ControlMessage], None]


def enqueue(session: Session, message: ControlMessage) -> None:
    """Send `message` after `session` commits; never if it rolls back."""
    session.info.setdefault(_OUTBOX_KEY, []).append(message)


def pending(session: Session) -> list[ControlMessage]:
    """Messages waiting in `session` for its commit."""
    return list(session.info.get(_OUTBOX_KEY, []))


def install(factory: sessionmaker[Session], send: Sender) -> None:
    """Make every session of `factory` flush its outbox to `send` when its transaction
    commits. A savepoint is not that transaction: its release sends nothing, and its rollback
    drops only the messages enqueued since it began (a lock waited for in savepoints,
    `common.lifecycle.placement_lock`, may time out and be waited for again)."""

    def _after_begin_nested(session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            marks = session.info.setdefault(_SAVEPOINTS_KEY, {})
            marks[transaction] = len(session.info.get(_OUTBOX_KEY, []))

    def _after_commit(session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint released: its parent goes on
            session.info.get(_SAVEPOINTS_KEY, {}).pop(session.get_nested_transaction(), None)
            return
        session.info.pop(_SAVEPOINTS_KEY, None)
        messages = session.info.pop(_OUTBOX_KEY, [])
        for message in messages:
            try:
                send(message)
            except Exception:
                # The reconciler re-sends desired state every round: a lost message heals.
                log.exception("could not send %s to %s", message.task, message.queue)

    def _after_rollback(session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            kept = session.info.get(_SAVEPOINTS_KEY, {}).pop(transaction, None)
            if kept is not None:
                del session.info.get(_OUTBOX_KEY, [])[kept:]
            return
        if transaction.parent is None:
            session.info.pop(_SAVEPOINTS_KEY, None)
            session.info.pop(_OUTBOX_KEY, None)

    event.listen(factory, "after_transaction_create", _after_begin_nested)
    event.listen(factory, "after_commit", _after_commit)
    event.listen(factory, "after_soft_rollback", _after_rollback)
