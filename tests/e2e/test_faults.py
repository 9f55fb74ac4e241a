"""Faults injected on purpose into a real farm: what the API says, within how long, and that
media comes back at a real receiver.

The farm runs on its own PostgreSQL and Redis, which these tests stop, freeze and kill; its
restreams send 160x90 test video over UDP to receivers in this process. The tests run in
order and each leaves the farm healthy for the next.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from common.config import Settings
from tests.support.farm import Farm, running_farm
from tests.support.faults import BreakablePostgres, BreakableRedis, UdpReceiver
from tests.support.ffmpeg_watch import FfmpegWatch
from tests.support.media import free_port
from tests.support.peers import nginx_rtmp, publisher, running
from tests.support.wait import wait_for

# One test process with the media matrix (tests/worker/test_media_cross.py): its real-time
# checks would suffer from the bursts of load these tests cause.
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("realtime")]

TRUTH_S = 2.0  # what the API says changes within this of the fault
DEFAULTS = Settings.model_construct()  # the farm under test runs the default lease timings
FAULT_ENV = {
    "STREAMFLEET_STALL_TIMEOUT_S": "10",
    "STREAMFLEET_DB_STATEMENT_TIMEOUT_S": "2",
    "STREAMFLEET_SOURCE_RETRY_MAX_S": "1",
}


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BreakablePostgres]:
    server = BreakablePostgres(tmp_path_factory.mktemp("fault-pg"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BreakableRedis]:
    server = BreakableRedis(tmp_path_factory.mktemp("fault-redis"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def farm(
    tmp_path_factory: pytest.TempPathFactory,
    postgres: BreakablePostgres,
    redis_server: BreakableRedis,
) -> Iterator[Farm]:
    # The reconciler's probes, on a port taken now (one chosen long before could be handed out
    # again meanwhile).
    env = {**FAULT_ENV, "STREAMFLEET_BEAT_HTTP_PORT": str(free_port())}
    with running_farm(
        tmp_path_factory.mktemp("faults"), postgres.url, env, redis_url=redis_server.url
    ) as started:
        yield started


@pytest.fixture(autouse=True)
def clean(farm: Farm) -> Iterator[None]:
    yield
    farm.remove_all()


def report(fault: str, **seconds: float) -> None:
    """The figures of a fault, for `pytest -s tests/e2e/test_faults.py` to show."""
    print(f"\n{fault}: " + ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))


def state_of(farm: Farm, restream_id: str) -> dict[str, Any]:
    return farm.get_by_id(restream_id)


def seconds_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll every 50 ms; how long it took `condition` to hold."""
    began = time.monotonic()
    wait_for(condition, timeout_s=timeout_s, every_s=0.05, what=what)
    return time.monotonic() - began


def running_to(farm: Farm, receiver: UdpReceiver, name: str) -> str:
    restream_id = farm.small_restream(name, receiver.port)
    wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=30)
    wait_for(receiver.receiving, timeout_s=10, what="media at the receiver")
    return restream_id


def events_of(farm: Farm, restream_id: str) -> list[dict[str, Any]]:
    answer = farm.http.get(f"/v1/restreams/{restream_id}/events", headers=farm.bearer)
    answer.raise_for_status()
    events: list[dict[str, Any]] = answer.json()
    return events


def ffmpeg_pid(farm: Farm, restream_id: str) -> int:
    """Its FFmpeg's pid, from the live statistics (written with the next lease renewal)."""

    def pid() -> int | None:
        url = f"/v1/restreams/{restream_id}/stats"
        live = farm.http.get(url, headers=farm.bearer).json()["live"]
        return live["pid"] if live else None

    found: int = wait_for(pid, timeout_s=5, what="live statistics")
    return found


def test_fifty_concurrent_starts_answer_at_once_and_run(farm: Farm) -> None:
    """They used to stall the whole API for 30 s (and 20 were told the database was
    unreachable). Listeners on their own ports: fifty FFmpeg that cost little."""
    ids: list[str] = []
    ports: set[int] = set()
    while len(ports) < 50:  # distinct: two listeners of one port on one node are a conflict
        ports.add(free_port())
    for i, port in enumerate(sorted(ports)):
        listen = {"port": port, "transport": "UDP"}
        created = farm.post(
            "/api/restream/create",
            {
                "restream_name": f"burst-{i}",
                "active": False,
                "input": {"input_type": "INPUT_TYPE_UDP_LISTEN", "input_stream_listen_port": listen},
                "output": {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"},
            },
        )  # fmt: skip
        ids.append(created["id"])

    def start(restream_id: str) -> tuple[int, float, str]:
        began = time.monotonic()
        answer = farm.http.post(
            "/api/restream/start", json={"id": restream_id}, headers=farm.callaba
        )
        return answer.status_code, time.monotonic() - began, answer.text

    with ThreadPoolExecutor(50) as pool:
        starts = [pool.submit(start, restream_id) for restream_id in ids]
        time.sleep(0.1)
        began = time.monotonic()
        listed = farm.http.post("/api/restream/getAll", headers=farm.callaba)
        list_s = time.monotonic() - began
        answers = [future.result() for future in starts]
    report("50 concurrent starts", slowest_answer=max(t for _, t, _ in answers), get_all=list_s)
    assert [status for status, _, _ in answers] == [200] * 50, [a for a in answers if a[0] != 200]
    assert max(seconds for _, seconds, _ in answers) < 10
    assert listed.status_code == 200 and list_s < 5

    def placed_or_told_why() -> bool:
        details = [state_of(farm, i) for i in ids]
        waiting = [d for d in details if d["state"] == "waiting"]
        pending = [d for d in details if d["state"] == "pending"]
        why = all(d["state_reason"].startswith("not enough free CPU") for d in pending)
        return len(waiting) + len(pending) == 50 and len(waiting) >= 20 and why

    # As many as the node has room for wait for their publishers; the rest say why not.
    wait_for(placed_or_told_why, timeout_s=60, every_s=0.5, what="fifty placed or pending")


def test_a_killed_ffmpeg_is_told_and_restarted(farm: Farm) -> None:
    with UdpReceiver() as receiver:
        restream_id = running_to(farm, receiver, "ffmpeg-killed")
        pid = ffmpeg_pid(farm, restream_id)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        told = seconds_until(
            lambda: (
                state_of(farm, restream_id)["state"] != "running"
                or state_of(farm, restream_id)["stats"]["restarts"] > 0
            ),
            TRUTH_S,
            "the API to tell",
        )
        wait_for(lambda: ffmpeg_pid(farm, restream_id) != pid, timeout_s=10, what="a new FFmpeg")
        wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=10)
        wait_for(receiver.receiving, timeout_s=10, what="media again")
    report("FFmpeg killed", told=told, longest_gap=receiver.longest_gap_s(killed_at))
    assert told < TRUTH_S
    reasons = [e["reason"] for e in events_of(farm, restream_id)]
    assert any("killed by SIGKILL" in (r or "") for r in reasons), reasons
    assert receiver.longest_gap_s(killed_at) < 5


def test_a_lost_source_is_waited_for_and_resumes(farm: Farm, tmp_path: Path) -> None:
    """The origin (nginx-rtmp, fed by a publisher) goes away for longer than the retry
    budget lasts (3 failures here; it used to be `failed` for good), then comes back on the
    same address: the restream waits for it, saying so within 2 s, and resumes."""
    port = free_port()
    source = f"rtmp://127.0.0.1:{port}/live/src"
    feed = publisher(["-f", "flv", source], size="160x90", rate=10)
    with UdpReceiver() as receiver:
        with nginx_rtmp(tmp_path / "before", port=port), running(feed, tmp_path / "feed.log"):
            restream_id = farm.small_restream(
                "pulled", receiver.port, input={"input_type": "INPUT_TYPE_RTMP_URL",
                                                "input_stream_url": source},
            )  # fmt: skip
            wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=30)
            wait_for(receiver.receiving, timeout_s=10, what="media at the receiver")
        lost_at = time.monotonic()  # the origin and its publisher are gone
        told = seconds_until(
            lambda: state_of(farm, restream_id)["state"] == "waiting", TRUTH_S + 1, "waiting"
        )
        seen = set()
        while time.monotonic() - lost_at < 8:  # refused again and again meanwhile
            seen.add(state_of(farm, restream_id)["state"])
            time.sleep(0.25)
        details = state_of(farm, restream_id)
        with nginx_rtmp(tmp_path / "after", port=port), running(feed, tmp_path / "feed2.log"):
            back_at = time.monotonic()
            wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=20)
            wait_for(receiver.receiving, timeout_s=10, what="media again")
            resumed_s = time.monotonic() - back_at
            # Its source is back: nothing to report (live statistics follow within a renewal).
            wait_for(lambda: state_of(farm, restream_id)["last_error"] is None, timeout_s=3)
    report("source lost", told=told, resumed_after_return=resumed_s)
    assert told < TRUTH_S, told
    assert seen == {"waiting"}, seen
    assert details["state_reason"].startswith("waiting for its source")
    assert resumed_s < 10


def test_a_killed_worker_is_told_within_two_seconds_and_its_restreams_move(
    farm: Farm,
) -> None:
    doomed = farm.start_worker("f-doomed", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    with UdpReceiver() as one, UdpReceiver() as two:
        markers = [f"udp://127.0.0.1:{r.port}" for r in (one, two)]
        farm.http.post(f"/v1/nodes/{farm.node}/drain", headers=farm.bearer).raise_for_status()
        try:
            ids = [running_to(farm, one, "w-1"), running_to(farm, two, "w-2")]
        finally:
            farm.http.post(f"/v1/nodes/{farm.node}/undrain", headers=farm.bearer)
        assert {state_of(farm, i)["node"] for i in ids} == {"f-doomed"}
        with FfmpegWatch(markers) as watch:
            killed_at = time.monotonic()
            doomed.send_signal(signal.SIGKILL)
            told = seconds_until(
                lambda: all(state_of(farm, i)["state"] == "recovering" for i in ids),
                TRUTH_S + 1,
                "recovering",
            )
            reason = state_of(farm, ids[0])["state_reason"]
            wait_for(
                lambda: all(state_of(farm, i)["state"] == "running" for i in ids),
                timeout_s=20,
                every_s=0.2,
                what="running elsewhere",
            )
            moved_s = time.monotonic() - killed_at
            wait_for(lambda: one.receiving() and two.receiving(), timeout_s=10, what="media")
    report("worker killed", told=told, running_elsewhere=moved_s)
    doubled = {m: n for m, n in watch.most_at_once.items() if n > 1}
    assert not doubled, f"two copies ran at once: {doubled}"
    assert told < TRUTH_S, told
    assert reason.startswith("node f-doomed stopped answering (its worker's connection")
    assert moved_s < 15
    assert {state_of(farm, i)["node"] for i in ids} == {farm.node}
    nodes = {n["name"]: n for n in farm.http.get("/v1/nodes", headers=farm.bearer).json()}
    assert nodes["f-doomed"]["state"] == "offline"


def test_probes_during_a_redis_outage(farm: Farm, redis_server: BreakableRedis) -> None:
    """While Redis is away every part stays alive (no liveness probe would restart a pod: a
    fleet of workers restarted at once would drop every stream) and says it is not ready; all
    are ready again once it is back."""
    http_port = free_port()
    worker = farm.start_worker("probed", {"STREAMFLEET_WORKER_HTTP_PORT": str(http_port)})
    bases = {
        "api": farm.base_url,
        "worker": f"http://127.0.0.1:{http_port}",
        "beat": f"http://127.0.0.1:{farm.env['STREAMFLEET_BEAT_HTTP_PORT']}",
    }
    alive = {"api": "/healthz", "worker": "/livez", "beat": "/livez"}

    def status(part: str, path: str) -> int:
        return httpx.get(bases[part] + path, timeout=5).status_code

    def all_ready(expected: int) -> bool:
        return all(status(part, "/readyz") == expected for part in bases)

    try:
        wait_for(lambda: all_ready(200), timeout_s=20, what="every part ready")
        redis_server.kill()
        try:
            # The worker once its lease can no longer be certain; the reconciler once no round
            # has succeeded for 10 s.
            wait_for(lambda: all_ready(503), timeout_s=20, what="every part unready")
            assert {part: status(part, path) for part, path in alive.items()} == dict.fromkeys(
                bases, 200
            )
        finally:
            redis_server.start()
        wait_for(lambda: all_ready(200), timeout_s=30, what="every part ready again")
        assert all(status(part, path) == 200 for part, path in alive.items())
    finally:
        worker.terminate()
        worker.wait(60)


def test_a_short_redis_outage_stops_nothing(farm: Farm, redis_server: BreakableRedis) -> None:
    """Redis killed and back 1 s later, empty (it keeps nothing on disk): shorter than the
    outage a lease survives whenever it starts (2.5 s: the TTL less one renewal interval), so
    no FFmpeg is fenced, and the API tells the same truth throughout. (The outage was 2 s, and
    the polling below and Redis's own start, on a busy machine, ate up the 0.5 s left.)"""
    survived_s = DEFAULTS.lease_ttl_s - DEFAULTS.lease_renew_interval_s
    with UdpReceiver() as receiver:
        restream_id = running_to(farm, receiver, "redis-blip")
        pid = ffmpeg_pid(farm, restream_id)
        cut_at = time.monotonic()
        redis_server.kill()
        states = set()
        while time.monotonic() - cut_at < 1:
            states.add(state_of(farm, restream_id)["state"])  # read from PostgreSQL meanwhile
            time.sleep(0.2)
        redis_server.start()
        outage_s = time.monotonic() - cut_at
        while time.monotonic() - cut_at < 9:  # past the moment a fence would have come
            states.add(state_of(farm, restream_id)["state"])
            time.sleep(0.2)
        assert ffmpeg_pid(farm, restream_id) == pid
        gap_s = receiver.longest_gap_s(cut_at)
    report("Redis away 1 s", outage=outage_s, longest_gap=gap_s)
    assert outage_s < survived_s, f"the outage took {outage_s:.2f} s: the test tells nothing"
    assert states == {"running"}, states
    assert gap_s < 1.0
    assert not any("fenced" in (e["reason"] or "") for e in events_of(farm, restream_id))


def test_a_long_redis_outage_fences_says_so_and_costs_no_more_than_itself(
    farm: Farm, redis_server: BreakableRedis
) -> None:
    """Redis away for 8 s: past the lease TTL and a renewal interval the worker kills its
    FFmpeg (its lease may be gone for good), tells PostgreSQL at once, and starts them again
    as soon as it holds its lease again, without waiting for the reconciler."""
    with UdpReceiver() as receiver:
        restream_id = running_to(farm, receiver, "redis-gone")
        cut_at = time.monotonic()
        redis_server.kill()
        fenced_s = seconds_until(
            lambda: state_of(farm, restream_id)["state"] == "recovering", 10, "fenced"
        )
        reason = state_of(farm, restream_id)["state_reason"]
        stopped_s = time.monotonic() - receiver.arrivals[-1]
        while time.monotonic() - cut_at < 8:
            time.sleep(0.1)
        redis_server.start()
        back_at = time.monotonic()
        wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=10)
        wait_for(receiver.receiving, timeout_s=10, what="media again")
        resumed_s = time.monotonic() - back_at
    report(
        "Redis away 8 s",
        fenced=fenced_s,
        media_stopped_before_told=stopped_s,
        resumed_after_return=resumed_s,
    )
    fence_after_s = DEFAULTS.fence_after_s  # the lease TTL plus one renewal interval
    last_renewal_s = DEFAULTS.lease_renew_interval_s  # at most this before the cut
    assert fence_after_s - last_renewal_s <= fenced_s <= fence_after_s + TRUTH_S, fenced_s
    assert stopped_s < TRUTH_S + 0.5  # the media stopped when the API said so
    assert reason.startswith("fenced on ")
    assert f"could not be renewed for {fence_after_s:g} s" in reason, reason
    assert resumed_s < 1.0 + 2.0, resumed_s  # one renewal, then FFmpeg's own start
    reasons = [e["reason"] or "" for e in events_of(farm, restream_id)]
    assert any(r.startswith("fenced on ") for r in reasons), reasons


def test_postgresql_stopped_is_said_at_once_and_costs_the_media_nothing(
    farm: Farm, postgres: BreakablePostgres
) -> None:
    with UdpReceiver() as receiver:
        restream_id = running_to(farm, receiver, "pg-stopped")
        before = farm.post("/api/restream/getAll")
        stopped_at = time.monotonic()
        postgres.stop()
        try:
            began = time.monotonic()
            answer = farm.http.post(
                "/api/restream/getById", json={"id": restream_id}, headers=farm.callaba
            )
            answer_s = time.monotonic() - began
            ready = farm.http.get("/readyz")
            time.sleep(3)  # the media does not need PostgreSQL
        finally:
            postgres.start()
        wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=15)
        gap_s = receiver.longest_gap_s(stopped_at)
    report("PostgreSQL stopped", answer=answer_s, longest_gap=gap_s)
    assert answer.status_code == 503 and answer.json()["message"].startswith(
        "the database is unreachable"
    )
    assert answer_s < 2
    assert ready.status_code == 503 and ready.json()["database"].startswith("unreachable")
    assert gap_s < 1.0
    assert farm.post("/api/restream/getAll") == before  # nothing lost


def test_a_frozen_postgresql_costs_a_request_seconds_not_the_freeze(
    farm: Farm, postgres: BreakablePostgres
) -> None:
    """Every process of PostgreSQL stopped (SIGSTOP), as a hung host: a request gives up
    after the statement timeout (2 s here) and a connection attempt, long before the 14 s
    freeze ends; it used to wait for as long as the freeze lasted."""
    with UdpReceiver() as receiver:
        restream_id = running_to(farm, receiver, "pg-frozen")
        frozen_at = time.monotonic()
        postgres.freeze()
        try:
            answer = farm.http.post(
                "/api/restream/getById",
                json={"id": restream_id},
                headers=farm.callaba,
                timeout=20,
            )
            answer_s = time.monotonic() - frozen_at
            while time.monotonic() - frozen_at < 14:
                time.sleep(0.2)
        finally:
            postgres.thaw()
        wait_for(lambda: state_of(farm, restream_id)["state"] == "running", timeout_s=20)
        gap_s = receiver.longest_gap_s(frozen_at)
    report("PostgreSQL frozen 14 s", answer=answer_s, longest_gap=gap_s)
    assert answer.status_code == 503, answer.text
    assert answer_s < 10, answer_s
    assert gap_s < 1.0
