"""The transaction scope's helpers on real PostgreSQL."""

from __future__ import annotations

from common.db import Database, database_now


def test_the_database_clock_is_read_once_per_transaction(db: Database) -> None:
    with db.sessions() as session:
        first = database_now(session)
        session.flush()
        assert database_now(session) == first  # the whole transaction changes at one time
        session.commit()
        assert database_now(session) > first  # a new transaction reads the clock again
