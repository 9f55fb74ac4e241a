"""The media server modules this node runs: SRT servers (`worker.srt_server`) and RTMP servers
(`worker.rtmp_server`, one nginx each), kept in step with the database.

Every `poll_s` the node reads the servers placed on it, ends those no longer placed here or
whose settings changed, starts the new ones, reports to the database what it observed (running,
or failed and why: only when that changed) and writes their live statistics to Redis. A server
that failed to start is tried again after `RETRY_S`. A node that runs no server (most nodes,
most of the time) reads only when a server's row changes (`common.wakeups`), and every
`idle_s` all the same; while nothing wakes it (not listening), every `poll_s`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from common import live
from common.db import Database
from common.definitions.server import ServerKind, ServerSpec, ServerState
from common.lifecycle import servers as lifecycle
from common.live import ServerStats
from common.servers import repository
from common.wakeups import Channel
from worker import libsrt
from worker.rtmp_server import RtmpServer
from worker.srt_server import SrtServer

log = logging.getLogger(__name__)

RETRY_S = 5.0
Engine = RtmpServer | SrtServer


def available_kinds(allowed: str) -> list[str]:
    """The kinds of server this node may run (`allowed`: "srt,rtmp") and has the engine for."""
    wanted = {k.strip() for k in allowed.split(",")}
    kinds = []
    if ServerKind.SRT in wanted and libsrt.missing() is None:
        kinds.append(ServerKind.SRT.value)
    if ServerKind.RTMP in wanted and RtmpServer("127.0.0.1", 0).missing() is None:
        kinds.append(ServerKind.RTMP.value)
    return kinds


def engine_for(address: str, spec: ServerSpec) -> Engine:
    if spec.kind is ServerKind.SRT:
        return SrtServer(address, spec)
    return RtmpServer(address, spec.port, module_server=True)


class NodeServers:
    def __init__(
        self,
        db: Database,
        client: redis.Redis,
        node: str,
        address: str,
        *,
        poll_s: float = 1.0,
        idle_s: float = 30.0,
        stats_ttl_s: float = 5.0,
        wakeups: Channel | None = None,
    ) -> None:
        self.db = db
        self.redis = client
        self.node = node
        self.address = address
        self.poll_s = poll_s
        self.idle_s = idle_s
        self.wakeups = wakeups or Channel()
        self.stats_ttl_s = stats_ttl_s
        self.running: dict[str, tuple[dict[str, Any], Engine]] = {}
        self.failed: dict[str, tuple[dict[str, Any], str, float]] = {}  # spec, why, when
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="servers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End every server it runs."""
        self._stop.set()
        self.wakeups.wake()
        if self._thread is not None:
            self._thread.join()
        for _, engine in self.running.values():
            engine.stop()
        self.running.clear()

    def _loop(self) -> None:
        while not self._stop.is_set():
            stepped = False
            try:
                self.step()
                stepped = True
            except (SQLAlchemyError, redis.RedisError) as error:
                log.warning("servers: %s", error)
            # Statistics to write, a start to retry, or no one to wake it: on the second.
            at_rest = stepped and not self.running and not self.failed and self.wakeups.listening
            self.wakeups.wait(self.idle_s if at_rest else self.poll_s)

    def step(self) -> None:
        """One pass: converge on the database, report, write statistics."""
        with self.db.reading() as session:  # one statement, every second
            placed = {s.id: s for s in repository.placed_on(session, self.node)}
            wanted = {sid: dict(s.spec) for sid, s in placed.items()}
            shown = {sid: (s.run_node, s.run_state, s.run_reason) for sid, s in placed.items()}
        for sid in list(self.running):
            spec, engine = self.running[sid]
            if wanted.get(sid) != spec:
                engine.stop()
                del self.running[sid]
                log.info("server %s ended here", sid)
        for sid in [sid for sid in self.failed if sid not in wanted]:
            del self.failed[sid]  # no longer placed here: not tried again
        now = time.monotonic()
        observed: dict[str, tuple[ServerState, str | None]] = {}
        for sid, spec in wanted.items():
            if sid not in self.running:
                failed = self.failed.get(sid)
                if failed is not None and failed[0] == spec and now - failed[2] < RETRY_S:
                    observed[sid] = (ServerState.FAILED, failed[1])
                    continue
                why = self._start(sid, spec)
                if why is not None:
                    self.failed[sid] = (spec, why, now)
                    observed[sid] = (ServerState.FAILED, why)
                    continue
                self.failed.pop(sid, None)
            observed[sid] = (ServerState.RUNNING, None)
        changed = {sid: seen for sid, seen in observed.items() if shown[sid] != (self.node, *seen)}
        if changed:
            self._report(changed)
        live.write_server_stats(
            self.redis,
            [
                ServerStats(
                    server_id=sid,
                    node=self.node,
                    streams=engine.streams(),
                    restarts=engine.restarts,
                )
                for sid, (_, engine) in self.running.items()
            ],
            self.stats_ttl_s,
        )

    def _start(self, server_id: str, spec: dict[str, Any]) -> str | None:
        engine = engine_for(self.address, ServerSpec.model_validate(spec))
        why = engine.start()
        if why is None:
            self.running[server_id] = (spec, engine)
            log.info("server %s runs here on port %d", server_id, engine.port)
        else:
            log.warning("server %s cannot run here: %s", server_id, why)
        return why

    def _report(self, changed: dict[str, tuple[ServerState, str | None]]) -> None:
        with self.db.transaction() as session:
            for sid, (state, why) in changed.items():
                server = repository.get(session, sid, None, for_update=True)
                if server is not None and server.node_name == self.node:
                    lifecycle.report(session, server, self.node, state, why)
