"""The node lease on a real Redis: one holder per node name, and fencing when it is lost."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from common import live
from common.definitions.node import NodeCapabilities
from tests.support.nodes import Twin
from tests.support.observers import FAST, Recorder, fake_job
from tests.support.processes import alive
from tests.support.proxy import Proxy
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
    def make(
        node: str = "twin",
        on_lost: Callable[[], None] | None = None,
        *,
        client: redis.Redis | None = None,
        on_regained: Callable[[], None] | None = None,
    ) -> Heartbeat:
        supervisor = Supervisor(node, FAST, recorder)
        supervisor.start()
        supervisors.append(supervisor)
        heartbeat = Heartbeat(
            client or redis_client,
            supervisor,
            node=node,
            address="127.0.0.1",
            capabilities=NodeCapabilities,
            key_ttl_s=TTL_S,
            fence_after_s=TTL_S - 0.3,
            interval_s=0.2,
            stats_ttl_s=TTL_S,
            on_lost=on_lost,
            on_regained=on_regained,
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


def test_a_worker_whose_name_a_live_twin_took_fences_and_leaves_the_lease_alone(
    worker: MakeWorker, redis_client: redis.Redis, recorder: Recorder
) -> None:
    """Its lease expired (Redis unreachable for a while) and another worker of the same name
    took it and renews it: this one kills what it runs at once, is told to leave, and never
    takes the lease back, even once the other is gone (it consumes the node's queue too)."""
    told = threading.Event()
    first = worker(on_lost=told.set)
    first.start()
    first.supervisor.run(fake_job("stall"))
    wait_for(lambda: "starting" in recorder.names(), what="the job to start")
    pid = recorder.last("starting")["pid"]

    with Twin(redis_client, "twin"):
        wait_for(lambda: not first.valid(), timeout_s=2, what="fenced at the first sighting")
        wait_for(lambda: not alive(pid), timeout_s=5, what="FFmpeg fenced")
        assert told.wait(5) and first.lost
        first.stop(release=True)  # not its lease: left in place
        assert holder(redis_client, "twin") == "elsewhere:1:abc"
    redis_client.delete(live.lease_key("twin"))  # the other worker went away too
    time.sleep(3 * 0.2)  # three renew intervals
    assert holder(redis_client, "twin") is None and not first.valid()


def test_a_stale_lease_in_its_name_fences_a_worker_until_it_expires(
    worker: MakeWorker, redis_client: redis.Redis
) -> None:
    """A lease in its name that nobody renews (a stale copy on a promoted Redis replica):
    the worker runs nothing while it lasts, then takes its own lease back."""
    told = threading.Event()
    first = worker(on_lost=told.set)
    first.start()
    stale = live.NodeLease(node="twin", renewed_at=time.time() - 3, holder="elsewhere:1:abc")
    live.write_lease(redis_client, stale, ttl_s=1.0)
    wait_for(lambda: not first.valid(), timeout_s=2, what="fenced")
    wait_for(first.valid, timeout_s=5, what="the lease taken back")
    assert holder(redis_client, "twin") == first.holder
    assert not told.is_set() and not first.lost


def test_a_worker_cut_off_from_redis_keeps_its_ffmpeg_until_its_fence_and_says_when_back(
    worker: MakeWorker, redis_url: str, recorder: Recorder
) -> None:
    """Cut off for less than the fence deadline: nothing stops. Longer: its FFmpeg is killed
    before the lease could expire; once it renews again it says so (the runtime then starts
    again what it still owns)."""
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    proxy = Proxy(host, int(port))
    regained = threading.Event()
    path = redis_url.removeprefix("redis://").split("/", 1)[1]
    through = live.connect(f"redis://127.0.0.1:{proxy.port}/{path}")
    cut_off = worker(client=through, on_regained=regained.set)
    cut_off.start()
    cut_off.supervisor.run(fake_job("stall"))
    wait_for(lambda: "starting" in recorder.names(), what="the job to start")
    pid = recorder.last("starting")["pid"]
    # Cut off right after a renewal, so that its validity is known however long the machine
    # takes (a fixed sleep from any moment left 0.1 s of slack). Few renewals have been made:
    # the deque of their times still grows.
    renewed = len(cut_off.renew_seconds)
    wait_for(lambda: len(cut_off.renew_seconds) > renewed, every_s=0.005, what="a renewal")
    proxy.freeze()
    # Each renewal begins by asking what runs: one begun from now on cannot get through.
    begun = threading.Event()
    generations = cut_off.supervisor.generations

    def counted() -> dict[str, int]:
        begun.set()
        return generations()

    cut_off.supervisor.generations = counted  # type: ignore[method-assign]
    assert begun.wait(2), "no renewal begun"
    assert alive(pid) and cut_off.valid()
    wait_for(lambda: not alive(pid), timeout_s=2, what="FFmpeg fenced")
    assert not regained.is_set()
    proxy.thaw()
    assert regained.wait(5) and cut_off.valid()


def test_a_worker_gives_its_lease_back_when_it_stops(
    worker: MakeWorker, redis_client: redis.Redis
) -> None:
    leaving = worker()
    leaving.start()
    assert holder(redis_client, "twin") == leaving.holder
    leaving.stop(release=True)
    assert holder(redis_client, "twin") is None


def test_only_the_holder_writes_statistics_with_its_lease(redis_client: redis.Redis) -> None:
    stats = [live.RestreamStats(restream_id="r1", node="twin", generation=1, state="running")]
    mine = live.NodeLease(node="twin", renewed_at=time.time(), holder="here:1:a")
    theirs = live.NodeLease(node="twin", renewed_at=time.time(), holder="elsewhere:1:abc")
    live.write_lease(redis_client, theirs, ttl_s=30)
    taken = live.claim_lease(redis_client, mine, 5, stats=stats, stats_ttl_s=5)
    assert taken is not None and taken.holder == "elsewhere:1:abc"
    assert live.read_stats(redis_client, ["r1"]) == {}
    redis_client.delete(live.lease_key("twin"))
    assert live.claim_lease(redis_client, mine, 5, stats=stats, stats_ttl_s=5) is None
    assert live.read_stats(redis_client, ["r1"])["r1"].state == "running"
    assert holder(redis_client, "twin") == "here:1:a"


def test_statistics_go_with_a_renewal_once_a_second_however_often_it_renews(
    worker: MakeWorker,
) -> None:
    heartbeat = worker("steady")  # renews every 0.2 s
    asked: list[float] = []
    real_stats = heartbeat.supervisor.stats

    def stats() -> list[live.RestreamStats]:
        asked.append(time.monotonic())
        return real_stats()

    heartbeat.supervisor.stats = stats  # type: ignore[method-assign]
    heartbeat.start()
    time.sleep(2.1)
    renewals = len(heartbeat.renew_seconds)
    assert renewals >= 9  # the first at start, then one each 0.2 s
    (family,) = heartbeat.renew_duration.collect()
    observed = family.samples
    count = next(s.value for s in observed if s.name.endswith("_count"))
    assert count >= renewals  # each one, for /metrics too
    assert 2 <= len(asked) <= 3  # at the start, then once a second
    assert all(b - a >= 0.85 for a, b in itertools.pairwise(asked))


def test_the_fence_sleeps_while_the_lease_is_valid_instead_of_ticking(
    worker: MakeWorker,
) -> None:
    """A wake-up costs a node at rest more than what it then does: the watchdog wakes when
    the validity of the last renewal it saw would run out (about every `fence_after_s`), not
    every WATCHDOG_PERIOD_S."""
    heartbeat = worker("quiet")  # valid for 0.7 s after each renewal, renewed every 0.2 s
    checks: list[float] = []
    valid = heartbeat.valid

    def counted() -> bool:
        checks.append(time.monotonic())
        return valid()

    heartbeat.valid = counted  # type: ignore[method-assign]
    heartbeat.start()
    time.sleep(3.0)
    assert valid()
    assert len(checks) <= 16  # two checks a wake-up, about every 0.5 s; ticking: 30
