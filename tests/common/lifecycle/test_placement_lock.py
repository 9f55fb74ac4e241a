"""The farm-wide placement lock on real PostgreSQL: a placement that finds it held waits in
PostgreSQL's queue (handed the lock as it is released, first come first served), in slices
that leave its transaction as it was."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

from common.db import Database
from common.errors import BackendUnavailable
from common.lifecycle import placement_lock
from common.lifecycle.placement_lock import lock_placement
from tests.support.wait import wait_for


@contextmanager
def held(db: Database) -> Iterator[Session]:
    """The lock, held by another transaction until the block ends."""
    with db.transaction() as session:
        lock_placement(session)
        yield session


def queued(engine: Engine) -> int:
    """Requests for an advisory lock waiting in PostgreSQL's queue."""
    with engine.connect() as connection:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        return int(connection.execute(text(waiting)).scalar_one())


def setting(session: Session, name: str) -> str:
    value = session.execute(text("SELECT current_setting(:name, true)"), {"name": name})
    return str(value.scalar_one())


class Placer(threading.Thread):
    """A transaction that writes something of its own, takes the lock, and reads back."""

    def __init__(self, db: Database) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.after: dict[str, str] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.db.transaction() as session:
                session.execute(text("SELECT set_config('streamfleet.mine', 'kept', true)"))
                lock_placement(session)
                self.after = {
                    "mine": setting(session, "streamfleet.mine"),
                    "lock_timeout": setting(session, "lock_timeout"),
                }
        except BaseException as error:  # told to the test
            self.error = error


def test_a_placement_waits_in_postgresqls_queue_and_gets_the_lock_once_released(
    committing_db: Database, engine: Engine
) -> None:
    placer = Placer(committing_db)
    with held(committing_db):
        placer.start()
        # In the queue, not polling: PostgreSQL hands it the lock the moment it is free.
        wait_for(lambda: queued(engine) == 1, timeout_s=5, what="the placement queued")
        assert placer.is_alive()
    placer.join(5)
    assert placer.error is None
    assert placer.after == {"mine": "kept", "lock_timeout": "0"}  # its own lock_timeout again


def test_a_wait_longer_than_a_slice_goes_on_in_the_same_transaction(
    committing_db: Database, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(placement_lock, "WAIT_SLICE_S", 0.05)
    slices: list[str] = []

    def count_slices(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "pg_advisory_xact_lock(" in statement:
            slices.append(statement)

    placer = Placer(committing_db)
    event.listen(Engine, "before_cursor_execute", count_slices)
    try:
        with held(committing_db):
            placer.start()
            wait_for(lambda: len(slices) >= 8, timeout_s=5, what="eight slices of waiting")
            assert placer.is_alive() and placer.error is None
            wait_for(lambda: queued(engine) == 1, timeout_s=5, what="the placement queued again")
    finally:
        event.remove(Engine, "before_cursor_execute", count_slices)
    placer.join(5)
    assert placer.error is None
    assert placer.after == {"mine": "kept", "lock_timeout": "0"}
    assert queued(engine) == 0


def test_a_placement_that_waits_too_long_is_told_the_farm_is_busy(
    committing_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(placement_lock, "WAIT_SLICE_S", 0.05)
    monkeypatch.setattr(placement_lock, "PLACEMENT_LOCK_WAIT_S", 0.3)
    placer = Placer(committing_db)
    with held(committing_db):
        placer.start()
        placer.join(5)
    assert isinstance(placer.error, BackendUnavailable)
    assert "too many placements at once" in str(placer.error)
