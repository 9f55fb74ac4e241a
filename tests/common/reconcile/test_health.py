"""The reconciler's probes and metrics, read from what its loop records."""

from __future__ import annotations

import httpx

from common.health import ProbeServer
from common.reconcile.health import RoundLog
from common.reconcile.run import RoundSummary
from tests.api.test_metrics import sample


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
