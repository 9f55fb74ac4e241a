"""A node's runtime: what a worker process owns. Its Celery tasks call its `controls`
(`worker.controls`); its health and metrics endpoint reads it (`worker.http.NodeView`)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.registry import Collector
from sqlalchemy.exc import OperationalError

from common import live
from common.config import Settings
from common.db import Database, make_engine
from common.definitions.states import NodeState
from common.ffmpeg.binary import resolve_ffmpeg
from common.ffmpeg.probe import FfmpegCapabilities, probe
from common.kube import Kubernetes
from common.lifecycle import nodes
from common.lifecycle.service import Farm
from common.live import RestreamStats
from common.nodes import repository as node_repository
from common.nodes.capabilities import count_u30_devices, node_capabilities
from common.outbox import Sender
from common.wakeups import SERVERS, WEBHOOKS, Wakeups
from worker.controls import Controls
from worker.cordon import CordonWatch
from worker.http import WorkerHttp
from worker.job import Limits
from worker.launch import Launcher
from worker.lease import Heartbeat, new_holder
from worker.own_servers import OwnServers
from worker.relay import RelayHub
from worker.reporter import RelayCleanup, Reporter
from worker.servers import NodeServers, available_kinds
from worker.supervisor import Supervisor
from worker.webhooks import WebhookSender

log = logging.getLogger(__name__)


class NodeRuntime:
    def __init__(
        self, settings: Settings, send: Sender, *, on_lost: Callable[[], None] | None = None
    ) -> None:
        """`on_lost`: told (on the lease's thread) that another worker of this node's name
        took the lease while this one ran. The worker should exit: see worker.lease."""
        self.settings = settings
        self.node = settings.node_name
        self.db = Database(
            make_engine(
                settings.database_url,
                connections=8,
                statement_timeout_s=settings.db_statement_timeout_s,
            ),
            send,
        )
        holder = new_holder()
        # Named after the lease's holder: Redis drops them the moment this process dies, and
        # the reconciler, seeing them gone, says so within a round (see live.read_farm).
        self.redis = live.connect(settings.redis_url, name=live.worker_connection_name(holder))
        self.ffmpeg: FfmpegCapabilities = probe(resolve_ffmpeg(settings.ffmpeg_binary))
        u30_devices = settings.u30_devices
        self.capabilities = node_capabilities(
            cores=os.cpu_count() or 1,
            ffmpeg=self.ffmpeg.as_dict(),
            cpu_millicores=settings.cpu_millicores,
            overcommit=settings.cpu_overcommit,
            u30_devices=count_u30_devices() if u30_devices is None else u30_devices,
            u30_source="sysfs" if u30_devices is None else "configuration",
            local_rtmp_url=settings.local_rtmp_url,
            local_rtsp_url=settings.local_rtsp_url,
            playback_base_url=settings.playback_base,
            labels=settings.node_labels,
            server_kinds=available_kinds(settings.server_kinds),
        )
        self.reporter = Reporter(self.db, Farm(self.redis, settings), self.node)
        self.relay = RelayHub()
        self.launcher = Launcher(
            settings,
            self.ffmpeg,
            self.relay,
            self.node,
            local_rtmp_url=settings.local_rtmp_url,
            local_rtsp_url=settings.local_rtsp_url,
        )
        self.supervisor = Supervisor(
            self.node,
            Limits.from_settings(settings),
            RelayCleanup(self.reporter, self.relay),
            meter=self.relay.kbps,
            may_run=self.lease_valid,  # nothing spawns on a fenced node (read lazily)
        )
        self.heartbeat = Heartbeat(
            self.redis,
            self.supervisor,
            node=self.node,
            address=settings.node_address,
            capabilities=lambda: self.capabilities,
            key_ttl_s=settings.lease_key_ttl_s,
            fence_after_s=settings.fence_after_s,
            interval_s=settings.lease_renew_interval_s,
            stats_ttl_s=settings.stats_ttl_s,
            holder=holder,
            on_lost=on_lost,
            on_regained=self._resume_in_background,
        )
        self.controls = Controls(
            self.node,
            self.db,
            self.heartbeat,
            self.supervisor,
            self.launcher,
            self.reporter,
            self.relay,
        )
        self.http: WorkerHttp | None = None
        self.cordon: CordonWatch | None = None
        self.wakeups = Wakeups(self.db.engine)
        self.webhooks = WebhookSender(
            self.db,
            allow_private=settings.outbound_private,
            wakeups=self.wakeups.channel(WEBHOOKS),
        )
        self.own = OwnServers()
        self.servers = NodeServers(
            self.db,
            self.redis,
            self.node,
            settings.listen_address,
            stats_ttl_s=settings.stats_ttl_s,
            wakeups=self.wakeups.channel(SERVERS),
        )

    def start(self) -> None:
        """Take the node's lease (raising NodeNameTaken if another worker holds it), then
        register the node and report on its restreams."""
        self._start_own_servers()
        self.supervisor.start()  # the lease carries what it runs: nothing yet
        try:
            self.heartbeat.start()
        except BaseException:
            self.supervisor.shutdown(1)
            raise
        try:
            with self.db.transaction() as session:
                nodes.register(session, self.node, self.capabilities, self.settings.node_labels)
        except BaseException:  # a restarted worker should not wait for this lease to expire
            self.heartbeat.stop(release=True)
            self.supervisor.shutdown(1)
            raise
        self.reporter.start()
        self.wakeups.start()
        self.servers.start()
        self.webhooks.start()
        if self.settings.drain_on_cordon:
            kube = Kubernetes.in_cluster(self.settings.kubernetes_api_url)
            self.cordon = CordonWatch(kube, self.node, self._follow_cordon)
            self.cordon.start()
        if self.settings.worker_http_port:
            try:
                token = self.settings.metrics_token
                self.http = WorkerHttp(
                    self,
                    self.settings.worker_http_port,
                    self.settings.worker_http_address or self.settings.node_address,
                    media_dir=Path(self.settings.media_dir),
                    metrics_token=token.get_secret_value() if token else None,
                )
            except OSError as error:  # another worker of this machine has the port
                port = self.settings.worker_http_port
                log.warning("no health/metrics endpoint on port %d: %s", port, error)
            else:
                self.http.start()
        log.info(
            "node %s up: FFmpeg %s (%s), %d encoders",
            self.node,
            self.ffmpeg.version,
            self.ffmpeg.binary,
            len(self.ffmpeg.encoders),
        )

    def shutdown(self) -> None:
        """Drain: move every restream to other nodes (stop here, start there), then leave.

        The node drains itself (no new restreams), marks its restreams as moving, stops its
        FFmpeg gracefully; each one, once gone, is placed on another node by the reporter.
        A node an operator had drained stays draining; one drained by this shutdown is
        marked offline, and comes back active with its next start.
        """
        self_drained = False
        if self.cordon is not None:
            self.cordon.stop()
        if self.heartbeat.lost:  # the node's name, its row and its restreams are another's now
            log.warning("leaving node %s to the worker that holds its lease", self.node)
            self.supervisor.shutdown(self.settings.stop_grace_s + 5)
            self.reporter.close()
            self.heartbeat.stop(release=True)  # does not touch another holder's lease
            self._close()
            return
        try:
            with self.db.transaction() as session:
                node = node_repository.get(session, self.node, for_update=True)
                if node is not None and node.state is NodeState.ACTIVE:
                    nodes.transition(session, node, NodeState.DRAINING, "worker shutting down")
                    self_drained = True
                nodes.evacuate(session, self.node, notify=False)
        except OperationalError:
            log.warning("database unreachable: stopping without moving the restreams")
        self.supervisor.shutdown(self.settings.stop_grace_s + 5)
        self.reporter.close()
        # The lease goes before the node is marked offline: a reconciler that saw an offline
        # node with a lease would mark it active again, and nothing would mark it offline.
        self.heartbeat.stop(release=True)
        if self_drained and not self.heartbeat.lost:  # lost meanwhile: the node is another's
            with contextlib.suppress(OperationalError), self.db.transaction() as session:
                node = node_repository.get(session, self.node, for_update=True)
                if node is not None and node.state is NodeState.DRAINING:
                    nodes.transition(session, node, NodeState.OFFLINE, "worker stopped")
        self._close()

    def _follow_cordon(self, cordoned: bool) -> None:
        with self.db.transaction() as session:
            nodes.follow_cordon(session, self.node, cordoned)

    def _start_own_servers(self) -> None:
        self.own = OwnServers.start(self.settings, self.node)
        if self.own.rtmp is not None:
            self.launcher.local_rtmp_url = self.own.rtmp.url
        if self.own.rtsp is not None:  # its restreams publish with the password of this run
            self.launcher.local_rtsp_url = self.own.rtsp.publish_url
        self.capabilities = self.capabilities.model_copy(update=self.own.offers())

    def _close(self) -> None:
        self.webhooks.stop()
        self.servers.stop()
        self.wakeups.stop()
        self.own.stop()  # after the FFmpeg publishing to them
        self.relay.close()
        if self.http is not None:
            self.http.stop()
        self.db.dispose()

    # -- control messages ---------------------------------------------------------------

    def _resume_in_background(self) -> None:
        """Told on the lease's thread, which must not wait for the database."""
        threading.Thread(target=self.controls.resume, name="resume", daemon=True).start()

    # -- what the health and metrics endpoint reads (worker.http.NodeView) -----------------

    def lease_valid(self) -> bool:
        return self.heartbeat.valid()

    def alive(self) -> bool:
        """The worker's own machinery runs: its lease's threads and its supervisor's loop
        (Redis or PostgreSQL being away does not make it dead)."""
        return self.heartbeat.alive() and self.supervisor.alive()

    def restream_stats(self) -> list[RestreamStats]:
        return self.supervisor.stats()

    def node_info(self) -> dict[str, str]:
        return {
            "address": self.settings.node_address,
            "ffmpeg_version": self.ffmpeg.version,
            "ffmpeg_path": str(self.ffmpeg.binary),
        }

    def collectors(self) -> list[Collector]:
        return [self.heartbeat.renew_duration]

    def usage(self) -> dict[str, Any]:
        """CPU capacity and use, and U30 encoder units per device, of what runs here."""
        jobs = self.supervisor.jobs()
        encoder: dict[int, int] = dict.fromkeys(self.capabilities.u30.devices, 0)
        for job in jobs:
            if job.u30_device is not None:
                encoder[job.u30_device] = encoder.get(job.u30_device, 0) + job.u30_encoder_units
        return {
            "cpu_capacity": self.capabilities.cpu.offered_millicores,
            "cpu_used": sum(job.cpu_millicores for job in jobs),
            "u30_encoder": encoder,
        }

    def info(self) -> dict[str, Any]:
        """What Flower shows on this worker's page (the bootstep's `info()`)."""
        usage = self.usage()
        return {
            "streamfleet": {
                "node": self.node,
                "capabilities": self.capabilities.model_dump(mode="json"),
                "capacity": {
                    "cpu_millicores": usage["cpu_capacity"],
                    "cpu_used_millicores": usage["cpu_used"],
                    "cpu_free_millicores": usage["cpu_capacity"] - usage["cpu_used"],
                    "u30_encoder_units_used": usage["u30_encoder"],
                },
                "running": {
                    s.restream_id: {"generation": s.generation, "state": s.state}
                    for s in self.supervisor.stats()
                },
                "lease_valid": self.heartbeat.valid(),
            }
        }
