"""`live.read_farm`: what a reconcile round reads from Redis, in one round trip."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
import redis

from common import live

TTL_S = 5.0


def _lease(node: str, holder: str) -> live.NodeLease:
    return live.NodeLease(node=node, renewed_at=time.time(), holder=holder)


def test_the_leases_their_time_left_the_connected_workers_and_redis_memory(
    redis_client: redis.Redis, redis_url: str
) -> None:
    assert live.claim_lease(redis_client, _lease("a", "host:1:aaa"), TTL_S) is None
    assert live.claim_lease(redis_client, _lease("b", "host:2:bbb"), TTL_S) is None
    worker = live.connect(redis_url, name=live.worker_connection_name("host:1:aaa"))
    worker.ping()  # a connection named by worker a; b's worker has none
    live.remember_since(redis_client, 60)

    farm = live.read_farm(redis_client, ["a", "b", "c"])

    assert set(farm.leases) == {"a", "b"} and farm.leases["a"].holder == "host:1:aaa"
    assert set(farm.remaining_s) == {"a", "b"}
    assert all(TTL_S - 1 < s <= TTL_S for s in farm.remaining_s.values())
    assert farm.connected is not None and "host:1:aaa" in farm.connected
    assert "host:2:bbb" not in farm.connected
    assert 59 < farm.memory_age_s < 70
    worker.close()


def test_redis_that_lost_its_memory_starts_remembering_now(redis_client: redis.Redis) -> None:
    assert live.read_farm(redis_client, []).memory_age_s == 0.0
    time.sleep(0.05)
    assert 0.04 < live.read_farm(redis_client, ["a"]).memory_age_s < 5


@pytest.fixture
def no_client_list(redis_client: redis.Redis, redis_url: str) -> Iterator[redis.Redis]:
    """A connection whose user may not run CLIENT (as some managed services refuse it)."""
    user = f"sf-test-{secrets.token_hex(4)}"
    redis_client.acl_setuser(
        user, enabled=True, nopass=True, keys=["*"], commands=["+@all", "-client"]
    )
    restricted = redis.Redis.from_url(redis_url, username=user, password="any")
    yield restricted
    restricted.close()
    redis_client.acl_deluser(user)


def test_a_redis_that_refuses_client_list_still_gives_the_leases(
    redis_client: redis.Redis, no_client_list: redis.Redis
) -> None:
    assert live.claim_lease(redis_client, _lease("a", "host:1:aaa"), TTL_S) is None
    farm = live.read_farm(no_client_list, ["a"])
    assert farm.connected is None  # not known: nothing is judged by it
    assert set(farm.leases) == {"a"} and set(farm.remaining_s) == {"a"}
