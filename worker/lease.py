"""The node lease: renewed every half second (live statistics with it once a second), and
self-fencing (DESIGN §4).

The fence deadline is measured from the moment a renewal was *sent*, so it always falls
before the key can expire in Redis: when the reconciler sees the lease gone and places the
restreams elsewhere, this node's copies are already dead. Never two publishers. It falls a
lease TTL plus one renewal interval after that renewal, so that a Redis outage shorter than
the TTL less one interval, whenever it starts, stops nothing; the key lives a fence margin
longer still.
A worker that fenced and renews again (Redis is back) says so (`on_regained`): its restreams
that are still its own start again at once, without waiting for the reconciler.

One worker per node name: the lease names the process holding it and is taken with a
check-and-set, so a second worker started under a name that is in use (a cloned machine, a
copied configuration) waits a lease TTL for it to expire, then refuses to run. Both would
otherwise consume the node's queue and run copies of its restreams. A worker that finds
another's lease in its name while it runs fences at once; if that lease is being renewed (a
worker of the same name started while this one was cut off from Redis past the TTL), it never
takes the lease back and is told to leave (`on_lost`). A lease that is not renewed (a stale
copy on a Redis replica) just expires, and the worker takes its own back.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

import redis
from prometheus_client import Histogram

from common import live
from common.definitions.node import NodeCapabilities
from worker.supervisor import Supervisor

log = logging.getLogger(__name__)
WATCHDOG_PERIOD_S = 0.1  # while fenced: how often whatever started since is killed
STATS_PERIOD_S = 1.0  # how often the live statistics are written (with a renewal)
RENEW_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def new_holder() -> str:
    """This worker process's name among the farm's: `host:pid:tag`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class NodeNameTaken(Exception):
    """Another live worker holds the lease of this node name."""

    def __init__(self, lease: live.NodeLease) -> None:
        age_s = max(time.time() - lease.renewed_at, 0.0)
        super().__init__(
            f"node name {lease.node!r} is in use: worker {lease.holder or '(unnamed)'} renewed "
            f"its lease {age_s:.1f} s ago. Give each worker its own STREAMFLEET_NODE_NAME."
        )
        self.lease = lease


class Heartbeat:
    def __init__(
        self,
        client: redis.Redis,
        supervisor: Supervisor,
        *,
        node: str,
        address: str,
        capabilities: Callable[[], NodeCapabilities],
        key_ttl_s: float,
        fence_after_s: float,
        interval_s: float,
        stats_ttl_s: float,
        holder: str | None = None,
        on_lost: Callable[[], None] | None = None,
        on_regained: Callable[[], None] | None = None,
    ) -> None:
        """`holder` names this worker process (`host:pid:tag`; made up if not given): its
        lease and its connections to Redis carry it."""
        self.redis = client
        self.supervisor = supervisor
        self.node = node
        self.address = address
        self.capabilities = capabilities
        self.key_ttl_s = key_ttl_s
        self.interval_s = interval_s
        self.fence_after_s = fence_after_s
        self.stats_ttl_s = stats_ttl_s
        self.holder = holder or new_holder()
        self._sighted: live.NodeLease | None = None  # another holder's lease in our name
        self.lost = False  # taken by another worker while this one ran: for good
        self._on_lost = on_lost
        self._on_regained = on_regained
        self._valid_until = 0.0
        self._stats_sent_at = -math.inf
        self._fenced = False
        self._stopped = threading.Event()
        self._nudged = threading.Event()  # wakes the fence: stopping, or the lease taken
        self._threads = [
            threading.Thread(target=self._renew_forever, name="lease", daemon=True),
            threading.Thread(target=self._watch_forever, name="fence", daemon=True),
        ]
        self.renew_seconds: deque[float] = deque(maxlen=60)  # how long recent renewals took
        # The same, for Prometheus (the worker's /metrics registers it).
        self.renew_duration = Histogram(
            "streamfleet_node_lease_renew_duration_seconds",
            "How long lease renewals took (a round trip to Redis with the node's statistics).",
            buckets=RENEW_BUCKETS,
            registry=None,
        )

    def start(self) -> None:
        """Take the lease, then keep renewing it in the background. A lease another worker
        left behind (killed, so it never released it) is waited for until it expires; raises
        NodeNameTaken if its holder is still renewing it then, or a RedisError."""
        deadline = time.monotonic() + self.key_ttl_s + self.interval_s
        while True:
            try:
                self.renew()
                break
            except NodeNameTaken as taken:
                if time.monotonic() >= deadline:
                    raise
                if self._sighted is None:
                    log.warning("%s Waiting up to %.0f s for it to expire.", taken, self.key_ttl_s)
                self._sighted = taken.lease
                time.sleep(self.interval_s / 4)
        for thread in self._threads:
            thread.start()

    def alive(self) -> bool:
        """Its renewing and fencing threads run (whether Redis answers or not)."""
        return all(thread.is_alive() for thread in self._threads)

    def stop(self, *, release: bool = True) -> None:
        self._stopped.set()
        self._nudged.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=5)
        if release:
            try:
                live.release_lease(self.redis, self.node, self.holder)
            except redis.RedisError:
                log.warning("could not release the lease of %s", self.node)

    def valid(self) -> bool:
        """True while this node may run FFmpeg: its lease is certainly still held."""
        return not self.lost and time.monotonic() < self._valid_until

    def renew(self) -> None:
        sent_at = time.monotonic()
        # Live statistics go with a renewal once a second, however often it renews.
        with_stats = sent_at - self._stats_sent_at >= STATS_PERIOD_S - self.interval_s / 2
        lease = live.NodeLease(
            node=self.node,
            renewed_at=time.time(),
            holder=self.holder,
            address=self.address,
            capabilities=self.capabilities(),
            running=self.supervisor.generations(),
        )
        taken = live.claim_lease(
            self.redis,
            lease,
            self.key_ttl_s,
            stats=self.supervisor.stats() if with_stats else (),
            stats_ttl_s=self.stats_ttl_s,
        )
        if taken is not None:
            raise NodeNameTaken(taken)
        if with_stats:
            self._stats_sent_at = sent_at
        self._valid_until = sent_at + self.fence_after_s
        took = time.monotonic() - sent_at
        self.renew_seconds.append(took)
        self.renew_duration.observe(took)
        if self._sighted is not None:
            holder = self._sighted.holder
            log.warning("lease of %s taken (its previous holder was %s)", self.node, holder)
            self._sighted = None
        if self._fenced and self.valid():  # a renewal sent long ago may not make it valid
            log.warning("lease of %s renewed again after fencing", self.node)
            self._fenced = False
            if self._on_regained is not None:
                self._on_regained()

    def _renew_forever(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.renew()
            except NodeNameTaken as taken:
                if self._taken(taken):
                    return
            except redis.RedisError as error:
                log.warning("lease of %s not renewed: %s", self.node, error)
            except Exception:
                log.exception("lease renewal failed")

    def _taken(self, taken: NodeNameTaken) -> bool:
        """Another holder's lease has this node's name: run nothing meanwhile. True once that
        holder is seen renewing it (a live twin): the lease is lost for good."""
        self._valid_until = 0.0
        self._nudged.set()  # the watchdog fences now
        seen, self._sighted = self._sighted, taken.lease
        if seen is None or seen.holder != taken.lease.holder:
            log.error("lease not renewed, fencing: %s", taken)
            return False
        if taken.lease.renewed_at <= seen.renewed_at:
            return False  # not renewed since: a stale copy, which expires
        # Never take it back: the other worker consumes this node's queue too.
        log.error("lease lost: %s This worker leaves.", taken)
        self.lost = True
        if self._on_lost is not None:
            self._on_lost()
        return True

    def _watch_forever(self) -> None:
        """Sleeps until the lease's validity runs out (a renewal since pushes it on: sleep
        again), not ticking while it is valid: a wake-up costs a node at rest more than
        anything it then does. While the lease is not valid, every tick kills whatever runs:
        what the fence found, and anything that started after it (the supervisor refuses to
        spawn, but a job may have been on its way in)."""
        while True:
            remaining_s = self._valid_until - time.monotonic()
            self._nudged.wait(remaining_s if self.valid() else WATCHDOG_PERIOD_S)
            self._nudged.clear()
            if self._stopped.is_set():
                return
            if self.valid():
                continue
            try:
                killed = self.supervisor.fence()
            except Exception:
                log.exception("fencing failed; trying again")
                continue
            if not self._fenced or killed:
                log.error(
                    "lease of %s not renewed for %.1f s: fenced, killed %d FFmpeg",
                    self.node,
                    self.fence_after_s,
                    killed,
                )
            self._fenced = True
