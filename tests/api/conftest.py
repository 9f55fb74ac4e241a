"""An API client on the test database (rolled back) and the test Redis."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from api.app import create_app
from common.accounts.service import create_api_key
from common.config import Settings
from common.db import Database
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.media import free_port
from tests.support.wait import wait_for


@pytest.fixture
def client(settings: Settings, db: Database, redis_client: redis.Redis) -> Iterator[TestClient]:
    """The API on the rolled-back test database; Redis (leases, rate limits, failed logins)
    emptied afterwards."""
    with TestClient(create_app(settings, db=db)) as test_client:
        yield test_client


def login(client: TestClient) -> str:
    """A fresh login token of the farm's administrator."""
    response = client.post(
        "/api/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    value: str = response.json()["token"]
    return value


@pytest.fixture
def token(client: TestClient) -> str:
    return login(client)


@pytest.fixture
def callaba(token: str) -> dict[str, str]:
    """Headers of a logged-in Callaba client."""
    return {"x-access-token": token}


@pytest.fixture
def api_key(db: Database) -> str:
    with db.transaction() as session:
        _, plaintext = create_api_key(session, "tests")
    return plaintext


@pytest.fixture
def bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def live(settings: Settings, committing_db: Database) -> Iterator[TestClient]:
    """The API on transactions that commit: for what follows only final changes (the event
    feed, webhooks), and for tests of concurrent requests."""
    with TestClient(create_app(settings, db=committing_db)) as client:
        yield client


@pytest.fixture
def admin(committing_db: Database) -> dict[str, str]:
    """A farm-wide admin's API key on the committing database, as a Bearer."""
    with committing_db.transaction() as session:
        _, key = create_api_key(session, "tests")
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def served(settings: Settings, committing_db: Database) -> Iterator[str]:
    """The API served by uvicorn on loopback (a stream needs a real server)."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, db=committing_db), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout_s=10, every_s=0.05, what="uvicorn")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
