"""Bursts of concurrent requests on a real API process's engine and thread pool: what they get,
and how long they take. The database commits (a rolled-back test transaction would serialise
everything on one connection)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import DatabaseGate
from common.config import Settings
from common.db import Database
from common.errors import BackendUnavailable
from tests.api.test_bad_input import CALLABA_PLAIN
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.nodes import simulate_node


@pytest.fixture
def live_client(
    settings: Settings, committing_db: Database, redis_client: redis.Redis
) -> Iterator[TestClient]:
    """The API with its own engine and pool, as `streamfleet api` runs it, and a live node."""
    simulate_node(committing_db, redis_client, "n1")
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def headers(live_client: TestClient) -> dict[str, str]:
    login = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    token = live_client.post("/api/auth/login", json=login).json()["token"]
    return {"x-access-token": token}


def test_fifty_concurrent_starts_all_answer_promptly(
    live_client: TestClient, headers: dict[str, str]
) -> None:
    """They used to take every connection and worker thread while waiting for the placement
    lock, leaving the holder none to commit on: 30 answered after 30 s, 20 with 503, and an
    unrelated getAll waited 30 s."""
    ids = [
        live_client.post(
            "/api/restream/create",
            json={**CALLABA_PLAIN, "restream_name": f"burst-{i}", "active": False},
            headers=headers,
        ).json()["id"]
        for i in range(50)
    ]

    def start(restream_id: str) -> tuple[int, float]:
        began = time.monotonic()
        answer = live_client.post("/api/restream/start", json={"id": restream_id}, headers=headers)
        return answer.status_code, time.monotonic() - began

    with ThreadPoolExecutor(51) as pool:
        starts = [pool.submit(start, restream_id) for restream_id in ids]
        time.sleep(0.05)  # the burst is under way
        began = time.monotonic()
        listed = live_client.post("/api/restream/getAll", headers=headers)
        list_s = time.monotonic() - began
        answers = [future.result() for future in starts]
    assert [status for status, _ in answers] == [200] * 50
    assert max(seconds for _, seconds in answers) < 10, answers
    assert listed.status_code == 200 and list_s < 10
    states = live_client.post("/api/restream/getAll", headers=headers).json()
    assert all(r["active"] for r in states)


def test_concurrent_creates_of_one_name_are_one_success_and_conflicts(
    live_client: TestClient, headers: dict[str, str]
) -> None:
    """The name check passes in each, then the unique index refuses all but one insert: that
    is a conflict (409), not an internal error (500)."""
    body: dict[str, Any] = {**CALLABA_PLAIN, "restream_name": "only one", "active": False}

    def create(_: int) -> tuple[int, Any]:
        answer = live_client.post("/api/restream/create", json=body, headers=headers)
        return answer.status_code, answer.json()

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(create, range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [409] * 19, answers
    # Refused by the unique index (its insert raced) or by the name check (it came later).
    assert {answer["message"] for status, answer in answers if status == 409} <= {
        "a restream of this name already exists in this project",
        "a restream named 'only one' already exists in this project",
    }


def test_reads_keep_a_share_of_the_database_while_writes_wait_their_turn() -> None:
    """Writes take at most three of four turns; a read finds the fourth at once. Reads may
    take every turn, and then a write waits (and is told the API is busy)."""

    async def scenario() -> None:
        gate = DatabaseGate(4, wait_s=0.3)
        async with AsyncExitStack() as held:
            for _ in range(3):
                await held.enter_async_context(gate.turn())
            with pytest.raises(BackendUnavailable, match="busy: 3 requests"):
                async with gate.turn():
                    pass
            async with gate.turn(reads_only=True):
                pass
        async with AsyncExitStack() as held:
            for _ in range(4):
                await held.enter_async_context(gate.turn(reads_only=True))
            with pytest.raises(BackendUnavailable, match="busy: 4 requests"):
                async with gate.turn():
                    pass
        async with gate.turn():  # every turn given back, timed-out waits included
            pass
        assert gate._turns._value == 4 and gate._writes._value == 3

    asyncio.run(scenario())
