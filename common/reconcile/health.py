"""How the reconciler fares, for its probes and its metrics.

Alive: a round finished (well or not) lately — a round that hangs, or a loop that stopped,
fails it, and the process is restarted. Ready: a round succeeded lately — PostgreSQL or Redis
away fails it, and restarts nothing (the next round heals what waited).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from common.reconcile.run import RoundSummary

ROUND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RoundLog:
    """What the reconcile loop did, as it did it (`record`), read by the probes."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        # A round may take a while (a statement timeout, a slow Redis): alive while one
        # finished within this; ready while one succeeded within that.
        self.alive_within_s = max(30.0, 10 * interval_s)
        self.ready_within_s = max(10.0, 5 * interval_s)
        self.last_finished: float | None = None
        self.last_success: float | None = None
        self._lock = threading.Lock()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.duration = Histogram(
            "streamfleet_reconcile_round_duration_seconds",
            "Duration of reconcile rounds that ran.",
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self.rounds = Counter(
            "streamfleet_reconcile_rounds",
            "Reconcile rounds by outcome: ran, skipped (another reconciler held the lock), "
            "failed (PostgreSQL or Redis out of reach).",
            ["outcome"],
            registry=self.registry,
        )
        self.actions = Counter(
            "streamfleet_reconcile_actions",
            "Changes the reconcile rounds made, by kind.",
            ["action"],
            registry=self.registry,
        )
        self.last_success_time = Gauge(
            "streamfleet_reconcile_last_success_timestamp_seconds",
            "Unix time of the last round that ran.",
            registry=self.registry,
        )

    def record(self, summary: RoundSummary | None, duration_s: float) -> None:
        """One round: its summary, or None if it failed."""
        now = self.clock()
        with self._lock:
            self.last_finished = now
            if summary is not None:
                self.last_success = now
        if summary is None:
            self.rounds.labels("failed").inc()
            return
        if not summary.ran:
            self.rounds.labels("skipped").inc()
            return
        self.rounds.labels("ran").inc()
        self.duration.observe(duration_s)
        self.last_success_time.set_to_current_time()
        for action, count in summary.actions.items():
            if action != "Sync":
                self.actions.labels(action).inc(count)

    def alive(self) -> tuple[bool, dict[str, Any]]:
        return self._within(self.last_finished, self.alive_within_s, "last_round_s")

    def ready(self) -> tuple[bool, dict[str, Any]]:
        return self._within(self.last_success, self.ready_within_s, "last_success_s")

    def _within(
        self, moment: float | None, limit_s: float, name: str
    ) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        with self._lock:
            since = moment if moment is not None else self.started
        age_s = now - since
        return age_s <= limit_s, {
            name: None if moment is None else round(age_s, 3),
            "limit_s": limit_s,
        }

    def metrics(self) -> bytes:
        return generate_latest(self.registry)
