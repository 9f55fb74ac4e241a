"""The node lease on a real Redis: one holder per node name, and fencing when it is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from common import live
from tests.support.observers import FAST, Recorder, fake_job
from tests.support.processes import alive
from tests.support.wait import wait_for
from worker.lease import Heartbeat, NodeNameTaken
from worker.supervisor import Supervisor

TTL_S = 1.0
MakeWorker = Callable[..., Heartbeat]


@pytest.fixture
def supervisors() -> Iterator[list[Supervisor]]:
    started: list[Supervisor] = []
    yield started
    for supervisor in started:
        supervisor.shutdown(timeout_s=10)


@pytest.fixture
def heartbeats() -> Iterator[list[Heartbeat]]:
    made: list[Heartbeat] = []
    yield made
    for heartbeat in made:
        heartbeat.stop(release=True)


@pytest.fixture
def worker(
    redis_client: redis.Redis,
    supervisors: list[Supervisor],
    heartbeats: list[Heartbeat],
    recorder: Recorder,
) -> MakeWorker:
    def make(node: str = "twin", on_lost: Callable[[], None] | None = None) -> Heartbeat:
        supervisor = Supervisor(node, FAST, recorder)
        supervisor.start()
        supervisors.append(supervisor)
        heartbeat = Heartbeat(
            redis_client,
            supervisor,
            node=node,
            address="127.0.0.1",
            capabilities=dict,
            ttl_s=TTL_S,
            interval_s=0.2,
            fence_margin_s=0.3,
            stats_ttl_s=TTL_S,
            on_lost=on_lost,
        )
        heartbeats.append(heartbeat)
        return heartbeat

    return make


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def holder(client: redis.Redis, node: str) -> str | None:
    lease = live.read_leases(client, [node]).get(node)
    return lease.holder if lease is not None else None


def test_a_second_worker_under_a_name_in_use_waits_a_ttl_then_refuses(
    worker: MakeWorker, redis_client: redis.Redis
) -> None:
    first, second = worker(), worker()
    first.start()
    with pytest.raises(NodeNameTaken) as refused:
        second.start()
    assert f"worker {first.holder} renewed its lease" in str(refused.value)
    assert "STREAMFLEET_NODE_NAME" in str(refused.value)
    assert not second.valid() and first.valid()
    assert holder(redis_client, "twin") == first.holder


def test_a_lease_left_by_a_killed_worker_is_taken_once_it_expires(
    worker: MakeWorker, redis_client: redis.Redis
) -> None:
    before, after = worker(), worker()
    before.start()
    before.stop(release=False)  # killed: it never gave the lease back
    waiting = time.monotonic()
    after.start()
    # Not before the old lease expired (it had at least TTL - one renew interval left).
    assert time.monotonic() - waiting > TTL_S - 0.2 - 0.1
    assert after.valid() and holder(redis_client, "twin") == after.holder


def test_a_worker_whose_name_is_taken_from_it_fences_and_leaves_the_lease_alone(
    worker: MakeWorker, redis_client: redis.Redis, recorder: Recorder
) -> None:
    """Its lease expired (Redis unreachable for a while) and another worker of the same name
    took it: this one kills what it runs at once, is told to leave, and never takes the lease
    back (the other worker consumes the node's queue too)."""
    told = threading.Event()
    first = worker(on_lost=told.set)
    first.start()
    first.supervisor.run(fake_job("stall"))
    wait_for(lambda: "starting" in recorder.names(), what="the job to start")
    pid = recorder.last("starting")["pid"]
    other = live.NodeLease(node="twin", renewed_at=time.time(), holder="elsewhere:1:abc")
    live.write_lease(redis_client, other, ttl_s=30)

    assert told.wait(5) and first.lost and not first.valid()
    wait_for(lambda: not alive(pid), timeout_s=5, what="FFmpeg fenced")
    first.stop(release=True)  # not its lease any more: left in place
    assert holder(redis_client, "twin") == "elsewhere:1:abc"


def test_a_worker_that_lost_its_lease_never_takes_it_back(
    worker: MakeWorker, redis_client: redis.Redis
) -> None:
    first = worker()
    first.start()
    other = live.NodeLease(node="twin", renewed_at=time.time(), holder="elsewhere:1:abc")
    live.write_lease(redis_client, other, ttl_s=30)
    wait_for(lambda: first.lost, timeout_s=5, what="the lease lost")
    redis_client.delete(live.lease_key("twin"))  # the other worker went away too
    time.sleep(3 * 0.2)  # three renew intervals
    assert holder(redis_client, "twin") is None and not first.valid()


def test_a_worker_gives_its_lease_back_when_it_stops(
    worker: MakeWorker, redis_client: redis.Redis
) -> None:
    leaving = worker()
    leaving.start()
    assert holder(redis_client, "twin") == leaving.holder
    leaving.stop(release=True)
    assert holder(redis_client, "twin") is None
