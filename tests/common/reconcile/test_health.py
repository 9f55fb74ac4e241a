"""The reconciler's probes and metrics, read from what its loop records."""

from __future__ import annotations

import httpx
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.health import ProbeServer
from common.lifecycle import nodes, service
from common.reconcile.health import FarmCollector, RoundLog
from common.reconcile.run import RoundSummary
from tests.api.test_metrics import sample
from tests.support.nodes import simulate_node

ADMIN = Principal("test", Role.ADMIN, None)
OUTPUTS = [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}]
DEFINITION = RestreamDefinition.model_validate(
    {"input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, "outputs": OUTPUTS}
)
WAITING = RestreamDefinition.model_validate(  # no node has a U30: it waits
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "transcoding": {"video_transcoding": "mpsoc_vcu_h264"},
        "outputs": OUTPUTS,
    }
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failing_rounds_make_it_unready_and_only_a_stopped_loop_makes_it_dead() -> None:
    clock = Clock()
    rounds = RoundLog(interval_s=1.0, clock=clock)
    assert rounds.alive()[0] and rounds.ready()[0]  # just started
    rounds.record(RoundSummary(ran=True, duration_ms=3.0, actions={"Assign": 2}), 0.003)
    clock.now += 20
    # Redis away for 20 s: every round fails, fast. Not ready; alive all the same.
    for _ in range(20):
        rounds.record(None, 0.001)
    assert rounds.alive()[0] and not rounds.ready()[0]
    rounds.record(RoundSummary(ran=False), 0.001)  # another reconciler holds the lock
    assert rounds.ready()[0]
    clock.now += 31  # no round finished for 31 s: hung
    assert not rounds.alive()[0]


def test_it_serves_probes_and_metrics() -> None:
    clock = Clock()
    rounds = RoundLog(interval_s=1.0, clock=clock)
    rounds.record(RoundSummary(ran=True, actions={"Assign": 2, "Sync": 5}), 0.004)
    rounds.record(None, 0.001)
    server = ProbeServer(
        0, "127.0.0.1", alive=rounds.alive, ready=rounds.ready, metrics=rounds.metrics,
        metrics_token="t0ken",
    )  # fmt: skip
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/livez").json()["ok"] is True
        clock.now += 11
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 503 and ready.json()["last_success_s"] == 11.0
        assert httpx.get(f"{base}/metrics").status_code == 401
        text = httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer t0ken"}).text
    finally:
        server.stop()
    assert sample(text, "streamfleet_reconcile_rounds_total", outcome="ran") == 1
    assert sample(text, "streamfleet_reconcile_rounds_total", outcome="failed") == 1
    assert sample(text, "streamfleet_reconcile_actions_total", action="Assign") == 2
    assert sample(text, "streamfleet_reconcile_round_duration_seconds_count") == 1
    assert "process_cpu_seconds_total" in text and "python_gc_objects_collected_total" in text


def test_the_leading_reconciler_exports_the_farm_once(
    db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    farm = service.Farm(redis_client, settings)
    simulate_node(db, redis_client, "n1")
    simulate_node(db, redis_client, "n2")
    with db.transaction() as session:
        project = projects.create(session, ADMIN, "studio")
        service.create(session, farm, ADMIN, "idle-one", DEFINITION, active=False)
        started = service.create(session, farm, ADMIN, "live-one", DEFINITION, active=True)
        in_project = Principal("p", Role.ADMIN, project.id)
        waiting = service.create(session, farm, in_project, "waits", WAITING, active=True)
        nodes.drain(session, ADMIN, "n2")
    clock = Clock()
    rounds = RoundLog(interval_s=1.0, clock=clock)
    registry = CollectorRegistry()
    registry.register(FarmCollector(db, rounds))

    rounds.record(RoundSummary(ran=False), 0.001)  # another reconciler's rounds run
    assert "streamfleet_" not in generate_latest(registry).decode()

    rounds.record(RoundSummary(ran=True), 0.002)
    clock.now += 2
    text = generate_latest(registry).decode()
    assert sample(text, "streamfleet_restreams", state="idle") == 1
    assert sample(text, "streamfleet_restreams", state="starting") == 1
    assert sample(text, "streamfleet_restreams", state="pending") == 1
    assert sample(text, "streamfleet_restreams", state="failed") == 0
    assert sample(text, "streamfleet_restream_state", restream=waiting.id, state="pending") == 1
    assert sample(text, "streamfleet_restream_state", restream=started.id, state="starting") == 1
    info = {"restream": waiting.id, "name": "waits", "project": project.id}
    assert sample(text, "streamfleet_restream_info", **info, project_name="studio") == 1
    assert sample(text, "streamfleet_nodes", state="active") == 1
    assert sample(text, "streamfleet_nodes", state="draining") == 1
    waited = sample(text, "streamfleet_reconcile_pending_oldest_seconds")
    assert waited is not None and 0 <= waited < 60

    clock.now += 11  # its rounds stopped running (the lock went to another): it stops exporting
    assert "streamfleet_" not in generate_latest(registry).decode()
