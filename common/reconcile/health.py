"""How the reconciler fares, for its probes and its metrics; and the farm's own figures.

Alive: a round finished (well or not) lately — a round that hangs, or a loop that stopped,
fails it, and the process is restarted. Ready: a round succeeded lately — PostgreSQL or Redis
away fails it, and restarts nothing (the next round heals what waited).

The farm's figures (restreams and nodes by state, each restream's name and project, how long
the oldest pending one has waited) are read from PostgreSQL at scrape time by the reconciler
whose rounds run — the one holding the round lock — and by no other process: exported once,
`sum()` over them counts each restream once, however many API or reconciler replicas run.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from common.db import Database
from common.definitions.states import NodeState, RestreamState
from common.health import process_registry
from common.nodes import repository as nodes
from common.reconcile.run import RoundSummary
from common.restreams import figures as restreams

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
        self.last_ran: float | None = None  # a round that held the round lock
        self._lock = threading.Lock()
        self.registry = process_registry()
        self.duration = Histogram(
            "streamfleet_reconcile_round_duration_seconds",
            "Duration of reconcile rounds that ran.",
            buckets=ROUND_BUCKETS,
            registry=self.registry,
        )
        self.rounds = Counter(
            "streamfleet_reconcile_rounds",
            "Reconcile rounds by outcome: ran, rested (the farm at rest and unchanged since the "
            "last round: not run), skipped (another reconciler held the lock), failed "
            "(PostgreSQL or Redis out of reach).",
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
                if summary.ran:
                    self.last_ran = now
        if summary is None:
            self.rounds.labels("failed").inc()
            return
        if not summary.ran:
            self.rounds.labels("skipped").inc()
            return
        self.last_success_time.set_to_current_time()
        if summary.rested:
            self.rounds.labels("rested").inc()
            return
        self.rounds.labels("ran").inc()
        self.duration.observe(duration_s)
        for action, count in summary.actions.items():
            if action != "Sync":
                self.actions.labels(action).inc(count)

    def leading(self) -> bool:
        """Whether this reconciler's rounds run (it held the round lock lately)."""
        with self._lock:
            moment = self.last_ran
        return moment is not None and self.clock() - moment <= self.ready_within_s

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


class FarmCollector(Collector):
    """The farm's figures, from PostgreSQL at scrape time, while `rounds` is the leading
    reconciler's (nothing otherwise: another one exports them)."""

    def __init__(self, db: Database, rounds: RoundLog) -> None:
        self.db = db
        self.rounds = rounds

    def collect(self) -> Iterator[Metric]:
        if not self.rounds.leading():
            return
        with self.db.transaction() as session:
            shown = restreams.shown_states(session)
            by_node_state = nodes.count_by_state(session)
            waited_s = restreams.oldest_pending_s(session)
        counts = GaugeMetricFamily(
            "streamfleet_restreams", "Restreams by the state they show.", labels=["state"]
        )
        by_state = collections.Counter(row.state for row in shown)
        for restream_state in RestreamState:
            counts.add_metric([restream_state.value], by_state[restream_state])
        states = GaugeMetricFamily(
            "streamfleet_restream_state",
            "1 for each restream, labelled with the state it shows.",
            labels=["restream", "state"],
        )
        info = InfoMetricFamily(
            "streamfleet_restream",
            "Each restream's name and project (join on `restream`).",
            labels=["restream", "name", "project", "project_name"],
        )
        for row in shown:
            states.add_metric([row.id, row.state.value], 1)
            info.add_metric([row.id, row.name, row.project_id, row.project_name], {})
        node_counts = GaugeMetricFamily(
            "streamfleet_nodes", "Worker nodes by state.", labels=["state"]
        )
        for node_state in NodeState:
            node_counts.add_metric([node_state.value], by_node_state.get(node_state, 0))
        pending = GaugeMetricFamily(
            "streamfleet_reconcile_pending_oldest_seconds",
            "How long the restream waiting longest for a node has waited (0: none waits).",
        )
        pending.add_metric([], waited_s)
        yield from (counts, states, info, node_counts, pending)
