"""Engine and transaction scope. Services never commit: the scope that called them does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.abc import PQGen
from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.exc import DisconnectionError, IntegrityError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from common import outbox
from common.errors import Conflict

UNIQUE_VIOLATION = "23505"
# What each unique constraint means to the operator, when a concurrent request got there first.
UNIQUE_MEANINGS = {
    "uq_restreams_project_name": "a restream of this name already exists in this project",
    "uq_projects_name": "a project of this name already exists",
    "uq_users_email": "a user with this e-mail already exists",
}


CONNECT_TIMEOUT_S = 5
# A connection back in the pool for longer than this is pinged before it is handed out again;
# one used more recently is not (a round trip saved on nearly every transaction of a busy
# process). A server that went away within that time fails the first statement instead: a
# disconnect, which discards every pooled connection at once (SQLAlchemy invalidates the pool).
PING_AFTER_IDLE_S = 1.0
DEFAULT_STATEMENT_TIMEOUT_S = 10.0
# How much longer than its statement timeout a client waits for a server that does not answer
# at all: a live server cancels the statement itself first, and says so.
ANSWER_MARGIN_S = 1.0


def make_engine(
    database_url: str,
    *,
    connections: int = 20,
    statement_timeout_s: float = DEFAULT_STATEMENT_TIMEOUT_S,
    pool_timeout_s: float = 30.0,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
) -> Engine:
    """An engine of `connections` at most (half of them kept open), whose statements end
    within `statement_timeout_s`: PostgreSQL cancels a slower one, and a server that does not
    answer at all (frozen, or its host hung) is given up on a moment later
    (`AnsweringConnection`). A connection idle for over `ping_after_idle_s` is checked
    before use (`ping_when_idle`)."""
    kept = max(1, connections // 2)
    engine = create_engine(
        database_url,
        pool_size=kept,
        max_overflow=connections - kept,
        pool_timeout=pool_timeout_s,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={round(statement_timeout_s * 1000)}",
        },
    )
    answer_timeout_s = statement_timeout_s + ANSWER_MARGIN_S

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> AnsweringConnection:
        connection = AnsweringConnection.connect(*cargs, **cparams)
        connection.answer_timeout_s = answer_timeout_s
        return connection

    ping_when_idle(engine, ping_after_idle_s)
    return engine


def ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection before handing it out if it has been idle for over `idle_s`
    (SQLAlchemy's `pool_pre_ping` pings every time); a dead one is replaced by a new one."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE_KEY] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop(_IDLE_SINCE_KEY, None)
        if idle_since is None or time.monotonic() - idle_since <= idle_s:
            return  # just connected, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError(f"a pooled connection is dead: {error}") from error


class AnsweringConnection(psycopg.Connection[Any]):
    """A connection that waits at most `answer_timeout_s` for each answer of the server.

    A statement that runs too long is PostgreSQL's to cancel (`statement_timeout`). But a
    server that is frozen (SIGSTOP, a hung host) or cut off without a reset never answers, and
    the thread waiting for it — an API request, a worker's reporter — would wait as long as
    that lasts. This one gives up instead and closes the connection (whatever state the
    server left it in is unknown), which the pool then discards.
    """

    answer_timeout_s: float | None = None

    def wait(self, gen: PQGen[Any], interval: float = 0.1, timeout: float | None = None) -> Any:
        limit = timeout if timeout is not None else self.answer_timeout_s
        try:
            return super().wait(gen, interval, limit)
        except psycopg.errors._WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"PostgreSQL did not answer within {limit:g} s: connection closed"
            ) from None


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

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only, each statement reading what is committed as it runs,
        with no transaction around them: no BEGIN and no COMMIT, two round trips fewer than
        `transaction` for a one-statement check. Bound to a test's connection (inside its
        rolled-back transaction), an ordinary transaction instead."""
        if not isinstance(self.bind, Engine):
            with self.transaction() as session:
                yield session
            return
        with (
            self.bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
            Session(connection, expire_on_commit=False) as session,
        ):
            event.listen(session, "before_flush", _refuse_changes)
            yield session

    def dispose(self) -> None:
        if isinstance(self.bind, Engine):
            self.bind.dispose()


_NOW_KEY = "streamfleet.now"
_IDLE_SINCE_KEY = "streamfleet.idle_since"


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


def keep_database_now(session: Session, now: datetime) -> None:
    """Make `now`, PostgreSQL's clock read by the caller's own statement, the transaction's
    time (`database_now`) if it has none yet."""
    session.info.setdefault(_NOW_KEY, now)


def _refuse_changes(session: Session, _context: Any, _instances: Any) -> None:
    """A reading session writes no rows: each would be committed on its own, at once."""
    changed = [o for o in session.dirty if session.is_modified(o)]
    if session.new or changed or session.deleted:
        raise RuntimeError("a session for reads only was asked to write rows")


def _forget_now(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the session's transaction, not a flush's or a savepoint's
        session.info.pop(_NOW_KEY, None)


def conflict_of(error: IntegrityError) -> Conflict | None:
    """The conflict a unique violation stands for: the check that a name is free passed, but
    a concurrent transaction took it before this one's insert."""
    if getattr(error.orig, "sqlstate", None) != UNIQUE_VIOLATION:
        return None
    diag = getattr(error.orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    return Conflict(UNIQUE_MEANINGS.get(constraint, f"already exists ({constraint or 'unique'})"))
