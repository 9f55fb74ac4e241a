"""Engine and transaction scope. Services never commit: the scope that called them does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from common import outbox


def make_engine(database_url: str, *, pool_size: int = 10) -> Engine:
    return create_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        connect_args={"connect_timeout": 5},
    )


class Database:
    """A session factory whose commits flush the control-message outbox.

    Bound to an engine in production; tests bind it to one connection inside a transaction
    they roll back, each commit here becoming a savepoint release.
    """

    def __init__(self, bind: Engine | Connection, send: outbox.Sender) -> None:
        self.bind = bind
        self.engine = bind if isinstance(bind, Engine) else bind.engine
        self.sessions: sessionmaker[Session] = sessionmaker(
            bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        outbox.install(self.sessions, send)
        event.listen(self.sessions, "after_transaction_end", _forget_now)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed if the block succeeds, else rolled back."""
        with self.sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        if isinstance(self.bind, Engine):
            self.bind.dispose()


_NOW_KEY = "streamfleet.now"


def database_now(session: Session) -> datetime:
    """The time by PostgreSQL's clock, the one clock of the farm: the reconciler measures time
    in a state against it (a host's clock may be off by seconds). Read at the first call in
    the transaction — after the row locks its first change waited for, where `now()`, the
    transaction's start, would make that change look older than it is — and kept for the
    rest of it (one query per transaction, however many rows it changes)."""
    now: datetime | None = session.info.get(_NOW_KEY)
    if now is None:
        now = session.execute(select(func.clock_timestamp())).scalar_one()
        session.info[_NOW_KEY] = now
    return now


def _forget_now(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's transaction, not a flush's or a savepoint's
        session.info.pop(_NOW_KEY, None)
