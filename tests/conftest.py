"""Shared fixtures: a migrated PostgreSQL database, Redis, settings, a rolled-back session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from sqlalchemy import Engine, text

from common import live
from common.config import Settings
from common.db import Database, make_engine
from common.migrate import check, upgrade
from common.models import Base
from common.outbox import ControlMessage
from tests.support.services import (
    fresh_database,
    postgres_server,
    redis_db_url,
    redis_server,
    xdist_index,
)

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "a-long-test-password"
JWT_SECRET = "a-test-secret-long-enough-for-hs256-keys"


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(pg_server_url: str) -> Iterator[str]:
    """A database of this test run, migrated to head by Alembic."""
    with fresh_database(pg_server_url) as url:
        upgrade(url)
        check(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, connections=4)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Redis for this xdist worker: its own database index, emptied at the start."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server_url:
        url = redis_db_url(server_url, 1 + xdist_index())
        live.connect(url).flushdb()
        yield url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = live.connect(redis_url)
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def sent() -> list[ControlMessage]:
    """Control messages the code under test sent (after its commits)."""
    return []


@pytest.fixture
def db(engine: Engine, sent: list[ControlMessage]) -> Iterator[Database]:
    """A Database whose every transaction lives inside one that is rolled back afterwards."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield Database(connection, sent.append)
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        jwt_secret=JWT_SECRET,
        node_name="test-node",
        api_requests_per_s=0,  # tests make many requests at once; the limit has its own tests
    )


@pytest.fixture
def committing_db(engine: Engine, sent: list[ControlMessage]) -> Iterator[Database]:
    """A Database whose transactions really commit (for tests of concurrent transactions);
    every table is emptied afterwards."""
    yield Database(engine, sent.append)
    with engine.begin() as connection:
        tables = ", ".join(t.name for t in reversed(Base.metadata.sorted_tables))
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))
