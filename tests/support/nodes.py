"""Simulated nodes for control-plane tests: a node row and a lease, no worker process."""

from __future__ import annotations

import time

import redis

from common import live
from common.db import Database
from common.nodes import service as nodes
from common.nodes.capabilities import node_capabilities

ALL_ENCODERS = ("libx264", "libx265", "aac", "libmp3lame")


def capabilities(encoders: tuple[str, ...] = ALL_ENCODERS) -> dict[str, object]:
    return node_capabilities(cores=2, ffmpeg={"version": "test", "encoders": list(encoders)})


def simulate_node(
    db: Database,
    client: redis.Redis,
    name: str,
    *,
    encoders: tuple[str, ...] = ALL_ENCODERS,
    running: dict[str, int] | None = None,
    lease: bool = True,
) -> None:
    """Register `name` as a worker would, and (if `lease`) give it a live lease."""
    caps = capabilities(encoders)
    with db.transaction() as session:
        nodes.register(session, name, caps, {})
    if lease:
        renew(client, name, encoders=encoders, running=running)


def renew(
    client: redis.Redis,
    name: str,
    *,
    encoders: tuple[str, ...] = ALL_ENCODERS,
    running: dict[str, int] | None = None,
    ttl_s: float = 30.0,
) -> None:
    live.write_lease(
        client,
        live.NodeLease(
            node=name,
            renewed_at=time.time(),
            capabilities=capabilities(encoders),
            running=running or {},
        ),
        ttl_s,
    )
