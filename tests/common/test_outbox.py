"""Control messages leave at the commit of the session's transaction, never before, and only
what it keeps (DESIGN §3), on real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from common.db import Database
from common.outbox import ControlMessage, enqueue

BEFORE = ControlMessage("restream.stop", "node.a", {"restream_id": "r1", "generation": 1})
INSIDE = ControlMessage("restream.start", "node.b", {"restream_id": "r2", "generation": 1})


def test_a_savepoint_released_sends_nothing_before_the_commit(
    db: Database, sent: list[ControlMessage]
) -> None:
    with db.sessions() as session:
        enqueue(session, BEFORE)
        with session.begin_nested():  # as a lock waited for in slices is
            session.execute(text("SELECT 1"))
            enqueue(session, INSIDE)
        assert sent == []
        session.commit()
    assert sent == [BEFORE, INSIDE]


def test_a_savepoint_rolled_back_drops_only_what_was_enqueued_inside_it(
    db: Database, sent: list[ControlMessage]
) -> None:
    with db.sessions() as session:
        enqueue(session, BEFORE)
        savepoint = session.begin_nested()
        enqueue(session, INSIDE)
        savepoint.rollback()  # a lock's wait that timed out, say
        with session.begin_nested():
            session.execute(text("SELECT 1"))
        session.commit()
    assert sent == [BEFORE]


def test_a_rolled_back_transaction_sends_nothing(db: Database, sent: list[ControlMessage]) -> None:
    with db.sessions() as session:
        enqueue(session, BEFORE)
        session.execute(text("SELECT 1"))
        session.rollback()
        session.commit()
    assert sent == []
