"""The transaction scope's helpers on real PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from common.db import CONNECT_TIMEOUT_S, Database, database_now, make_engine
from tests.support.proxy import Proxy


def test_the_database_clock_is_read_once_per_transaction(db: Database) -> None:
    with db.sessions() as session:
        first = database_now(session)
        session.flush()
        assert database_now(session) == first  # the whole transaction changes at one time
        session.commit()
        assert database_now(session) > first  # a new transaction reads the clock again


def test_a_server_that_does_not_answer_is_given_up_on(database_url: str) -> None:
    """A statement to a frozen server (stopped, its host hung: the connection stays up, no
    answer comes) fails after the statement timeout and its margin, and the pool replaces
    the connection; without this, the waiting thread hangs for as long as the freeze."""
    proxy, through = Proxy.before_postgres(database_url)
    engine = make_engine(through, connections=2, statement_timeout_s=0.5)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar_one() == 1
            proxy.freeze()
            started = time.monotonic()
            with pytest.raises(OperationalError, match=r"did not answer within 1\.5 s"):
                connection.execute(text("SELECT 1"))
            assert 1.4 < time.monotonic() - started < 3
        started = time.monotonic()
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.execute(text("SELECT 1"))  # the ping, then a new connection, give up
        assert time.monotonic() - started < 1.5 + CONNECT_TIMEOUT_S + 1
        proxy.thaw()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 2")).scalar_one() == 2
    finally:
        proxy.thaw()
        engine.dispose()


def test_a_statement_that_runs_too_long_is_cancelled_by_postgresql(database_url: str) -> None:
    engine = make_engine(database_url, connections=2, statement_timeout_s=0.3)
    try:
        with engine.connect() as connection, pytest.raises(OperationalError, match="statement"):
            connection.execute(text("SELECT pg_sleep(2)"))
    finally:
        engine.dispose()


def test_a_pooled_connection_is_pinged_only_after_idling_and_replaced_if_dead(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection used a moment ago goes back to work without a ping (a round trip saved
    on nearly every transaction); one idle for longer is pinged first, and a dead one (its
    server restarted, its backend ended) is replaced rather than failing the caller."""
    engine = make_engine(database_url, connections=2, ping_after_idle_s=0.3)
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(connection: Any) -> bool:
        pings.append(connection)
        return ping(connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    backend = text("SELECT pg_backend_pid()")
    try:
        with engine.connect() as connection:
            first = connection.execute(backend).scalar_one()
        with engine.connect() as connection:
            assert connection.execute(backend).scalar_one() == first
        assert pings == []  # used a moment ago
        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (first,))
        time.sleep(0.4)
        with engine.connect() as connection:
            assert connection.execute(backend).scalar_one() != first  # a new one
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_reading_runs_its_statements_outside_a_transaction(database_url: str) -> None:
    """`reading` sends no BEGIN (nothing is open after a statement, so nothing to commit),
    and its connection goes back to the pool as it came: the next `transaction` is one."""
    engine = make_engine(database_url, connections=1)
    db = Database(engine, lambda _message: None)
    try:
        with db.reading() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
            raw = session.connection().connection.driver_connection
            assert raw is not None and raw.info.transaction_status == TransactionStatus.IDLE
        with db.transaction() as session:
            session.execute(text("SELECT 1"))
            raw = session.connection().connection.driver_connection
            assert raw is not None and raw.info.transaction_status == TransactionStatus.INTRANS
    finally:
        engine.dispose()
