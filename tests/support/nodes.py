"""Simulated nodes for control-plane tests: a node row and a lease, no worker process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from common import live
from common.db import Database
from common.definitions.node import NodeCapabilities
from common.lifecycle import nodes
from common.nodes.capabilities import node_capabilities

ALL_ENCODERS = ("libx264", "libx265", "aac", "libmp3lame")
PROTOCOLS = ("file", "http", "https", "rtmp", "rtmps", "rtp", "rtsp", "srt", "tcp", "udp")


# Big enough that tests about something else never run out of room.
ROOMY_MILLICORES = 64_000


@dataclass(frozen=True)
class Offers:
    """What else a simulated node has: labels, its own servers, where it serves playback."""

    labels: dict[str, str] = field(default_factory=dict)
    local_rtmp_url: str | None = None
    local_rtsp_url: str | None = None
    playback_base_url: str | None = None
    address: str = "127.0.0.1"  # the address its lease advertises
    server_kinds: tuple[str, ...] = ()  # the server modules it can run ("srt", "rtmp")


def capabilities(
    encoders: tuple[str, ...] = ALL_ENCODERS,
    millicores: int = ROOMY_MILLICORES,
    u30_devices: int = 0,
    offers: Offers | None = None,
) -> NodeCapabilities:
    offers = offers or Offers()
    return node_capabilities(
        cores=2,
        ffmpeg={"version": "test", "encoders": list(encoders), "protocols": list(PROTOCOLS)},
        cpu_millicores=millicores,
        u30_devices=u30_devices,
        u30_source="configuration",
        local_rtmp_url=offers.local_rtmp_url,
        local_rtsp_url=offers.local_rtsp_url,
        playback_base_url=offers.playback_base_url,
        labels=offers.labels,
        server_kinds=list(offers.server_kinds),
    )


def simulate_node(
    db: Database,
    client: redis.Redis,
    name: str,
    *,
    encoders: tuple[str, ...] = ALL_ENCODERS,
    millicores: int = ROOMY_MILLICORES,
    u30_devices: int = 0,
    running: dict[str, int] | None = None,
    lease: bool = True,
    offers: Offers | None = None,
) -> None:
    """Register `name` as a worker would, and (if `lease`) give it a live lease."""
    caps = capabilities(encoders, millicores, u30_devices, offers)
    with db.transaction() as session:
        nodes.register(session, name, caps, offers.labels if offers else {})
    if lease:
        renew(client, name, caps, running=running, address=(offers or Offers()).address)


def renew(
    client: redis.Redis,
    name: str,
    caps: NodeCapabilities | None = None,
    *,
    running: dict[str, int] | None = None,
    ttl_s: float = 30.0,
    address: str = "127.0.0.1",
) -> None:
    live.write_lease(
        client,
        live.NodeLease(
            node=name,
            renewed_at=time.time(),
            capabilities=caps or capabilities(),
            running=running or {},
            address=address,
        ),
        ttl_s,
    )


class Twin:
    """Another worker of the same node name, as far as the lease shows: renews it every 0.2 s
    while the block runs (a context manager)."""

    def __init__(self, client: redis.Redis, node: str, holder: str = "elsewhere:1:abc") -> None:
        self.client, self.node, self.holder = client, node, holder
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, daemon=True)

    def __enter__(self) -> Twin:
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _write(self) -> None:
        lease = live.NodeLease(node=self.node, renewed_at=time.time(), holder=self.holder)
        live.write_lease(self.client, lease, ttl_s=30)

    def _renew(self) -> None:
        while not self._stop.wait(0.2):
            self._write()
