"""Live data in Redis: node leases and per-restream statistics, each with a TTL (DESIGN §2).

Workers write; the API and the reconciler read. A missing key means "no news": a node without
a lease is presumed dead, a restream without stats is not running anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from pydantic import BaseModel, Field, ValidationError

from common.definitions.node import NodeCapabilities

LEASE_PREFIX = "streamfleet:lease:"
MEMORY_KEY = "streamfleet:memory-since"
STATS_PREFIX = "streamfleet:stats:"
SERVER_STATS_PREFIX = "streamfleet:server-stats:"

M = TypeVar("M", bound=BaseModel)


class NodeLease(BaseModel):
    """What a live worker says about itself, renewed every second."""

    node: str
    renewed_at: float = Field(description="Unix time of the renewal.")
    holder: str = Field(
        "", description="The worker process holding it (`host:pid:tag`): one per node name."
    )
    address: str = "127.0.0.1"
    capabilities: NodeCapabilities = Field(default_factory=NodeCapabilities)
    running: dict[str, int] = Field(
        default_factory=dict, description="Restream id -> generation of each FFmpeg it runs."
    )


class OutputStatus(BaseModel):
    """How one output of a restream fares (by its position in the definition)."""

    index: int
    status: str = Field(description="`ok`, or `failed` (dropped; the other outputs go on).")
    error: str | None = None


class RestreamStats(BaseModel):
    """Live statistics of one restream, from the worker that runs it."""

    restream_id: str
    node: str
    generation: int
    state: str = Field(description="The worker's view: starting, running or retrying.")
    pid: int | None = None
    bitrate_kbps: float | None = None
    fps: float | None = None
    speed: float | None = None
    frames: int | None = None
    bytes_out: int | None = None
    dup_frames: int = 0
    drop_frames: int = 0
    uptime_s: float = 0.0
    restarts: int = 0
    stalls: int = 0
    last_error: str | None = None
    on_air: str | None = Field(
        None, description="Continuity: the input on air (primary, backup, slate)."
    )
    on_air_since: float | None = Field(None, description="Since when it is on air (Unix time).")
    outputs: list[OutputStatus] = Field(default_factory=list)
    updated_at: float = Field(default_factory=time.time)


class PeerStats(BaseModel):
    """One publisher or player of a server's stream."""

    address: str
    kbps: float = Field(0.0, description="Its bitrate over the last second or so, kbit/s.")
    bytes: int = 0
    lost: int = Field(0, description="SRT: packets lost on the way (received: from it).")


class StreamStats(BaseModel):
    name: str
    publisher: PeerStats | None = None
    players: list[PeerStats] = Field(default_factory=list)


class ServerStats(BaseModel):
    """Live statistics of one media server module, from the node that runs it."""

    server_id: str
    node: str
    streams: list[StreamStats] = Field(default_factory=list)
    restarts: int = 0
    updated_at: float = Field(default_factory=time.time)


def lease_key(node: str) -> str:
    return LEASE_PREFIX + node


def stats_key(restream_id: str) -> str:
    return STATS_PREFIX + restream_id


def write_lease(client: redis.Redis, lease: NodeLease, ttl_s: float) -> None:
    """Write a lease whoever holds it (simulated nodes); workers `claim_lease`."""
    client.set(lease_key(lease.node), lease.model_dump_json(), px=int(ttl_s * 1000))


# The current lease, if it belongs to another holder (ARGV[2]); otherwise sets ours
# (KEYS[1] <- ARGV[1], PX ARGV[3]) and the statistics (KEYS[i] <- ARGV[i + 3], PX ARGV[4]).
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, lease = pcall(cjson.decode, current)
  if not ok or type(lease) ~= 'table' or lease['holder'] ~= ARGV[2] then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 3], 'PX', ARGV[4])
end
return false
"""

_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, lease = pcall(cjson.decode, current)
  if ok and type(lease) == 'table' and lease['holder'] == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
end
return 0
"""


def claim_lease(
    client: redis.Redis,
    lease: NodeLease,
    ttl_s: float,
    *,
    stats: Sequence[RestreamStats] = (),
    stats_ttl_s: float = 0.0,
) -> NodeLease | None:
    """Write `lease` unless another holder's lease of that node is alive: then it is not
    written and that lease is returned. One check-and-set in Redis, so two workers given the
    same node name never both hold it. The statistics of what the node runs are written with
    it, by its holder only, in the same script."""
    keys = [lease_key(lease.node), *(stats_key(s.restream_id) for s in stats)]
    args: list[str | int] = [
        lease.model_dump_json(),
        lease.holder,
        int(ttl_s * 1000),
        int(stats_ttl_s * 1000),
        *(s.model_dump_json() for s in stats),
    ]
    current = client.eval(_CLAIM, len(keys), *keys, *args)
    if current is None:
        return None
    try:
        return NodeLease.model_validate_json(current)
    except ValidationError:  # written by an incompatible version: held all the same
        return NodeLease(node=lease.node, renewed_at=0.0, holder="unknown")


def release_lease(client: redis.Redis, node: str, holder: str) -> None:
    """Delete the node's lease if `holder` still holds it."""
    client.eval(_RELEASE, 1, lease_key(node), holder)


WORKER_CONNECTION_PREFIX = "streamfleet-worker:"


def worker_connection_name(holder: str) -> str:
    """The name a worker gives its connections to Redis (`CLIENT SETNAME`): Redis drops them
    the moment the worker's process dies, long before its lease expires."""
    return WORKER_CONNECTION_PREFIX + holder


@dataclass(frozen=True)
class FarmReading:
    """What a reconcile round reads from Redis, in one round trip (`read_farm`)."""

    memory_age_s: float  # how long Redis has remembered this farm (see `read_farm`)
    leases: dict[str, NodeLease]  # of each named node that has one
    remaining_s: dict[str, float]  # seconds until each of those leases expires, by Redis
    # The lease holders (`host:pid:tag`) with a connection to Redis now; None when this Redis
    # does not let us list its clients (a managed service may refuse CLIENT LIST).
    connected: set[str] | None


def read_farm(client: redis.Redis, nodes: Sequence[str]) -> FarmReading:
    """The named nodes' leases, the seconds each has left and the workers connected, and how
    long Redis has remembered the farm: one round trip (a round asks every second).

    Redis's memory is a key without expiry, set once by Redis's own clock: it is lost when
    Redis loses its data (a restart without persistence, a flush, an empty replica promoted),
    and every node lease with it, although no node fenced."""
    keys = [lease_key(n) for n in nodes]
    pipe = client.pipeline(transaction=False)
    pipe.time()
    pipe.get(MEMORY_KEY)
    if keys:
        pipe.mget(keys)
        for key in keys:
            pipe.pttl(key)
        pipe.client_list(_type="normal")
    answers = pipe.execute(raise_on_error=False)
    for answer in answers[: len(answers) - 1 if keys else None]:
        if isinstance(answer, Exception):  # only CLIENT LIST may be refused
            raise answer
    (seconds, micros), since = answers[0], answers[1]
    now = seconds + micros / 1_000_000
    if since is None:  # first asked, or the memory is lost: it starts now
        client.set(MEMORY_KEY, repr(now), nx=True)
        since = client.get(MEMORY_KEY)
    memory_s = now - float(since) if since is not None else 0.0
    if not keys:
        return FarmReading(memory_s, {}, {}, set())
    leases = {lease.node: lease for lease in parse_all(NodeLease, answers[2])}
    ttls = answers[3 : 3 + len(keys)]
    remaining = {n: ms / 1000 for n, ms in zip(nodes, ttls, strict=True) if ms >= 0}
    clients = answers[-1]
    connected = (
        None
        if isinstance(clients, Exception)
        else {
            name.removeprefix(WORKER_CONNECTION_PREFIX)
            for name in (str(c.get("name", "")) for c in clients)
            if name.startswith(WORKER_CONNECTION_PREFIX)
        }
        if leases
        else set()
    )
    return FarmReading(memory_s, leases, remaining, connected)


def remember_since(client: redis.Redis, seconds_ago: float) -> None:
    """Make Redis's memory of the farm `seconds_ago` old (benchmarks and tests)."""
    seconds, micros = client.time()
    client.set(MEMORY_KEY, repr(seconds + micros / 1_000_000 - seconds_ago))


def read_leases(client: redis.Redis, nodes: list[str]) -> dict[str, NodeLease]:
    """The current lease of each named node that has one."""
    if not nodes:
        return {}
    raw = client.mget([lease_key(n) for n in nodes])
    return {lease.node: lease for lease in parse_all(NodeLease, raw)}


def write_stats(client: redis.Redis, stats: list[RestreamStats], ttl_s: float) -> None:
    if not stats:
        return
    pipe = client.pipeline(transaction=False)
    for item in stats:
        pipe.set(stats_key(item.restream_id), item.model_dump_json(), px=int(ttl_s * 1000))
    pipe.execute()


def delete_stats(client: redis.Redis, restream_id: str) -> None:
    client.delete(stats_key(restream_id))


def read_stats(client: redis.Redis, restream_ids: list[str]) -> dict[str, RestreamStats]:
    if not restream_ids:
        return {}
    raw = client.mget([stats_key(i) for i in restream_ids])
    return {s.restream_id: s for s in parse_all(RestreamStats, raw)}


def write_server_stats(client: redis.Redis, stats: Sequence[ServerStats], ttl_s: float) -> None:
    if not stats:
        return
    pipe = client.pipeline(transaction=False)
    for item in stats:
        pipe.set(SERVER_STATS_PREFIX + item.server_id, item.model_dump_json(), px=int(ttl_s * 1000))
    pipe.execute()


def read_server_stats(client: redis.Redis, server_ids: list[str]) -> dict[str, ServerStats]:
    if not server_ids:
        return {}
    raw = client.mget([SERVER_STATS_PREFIX + i for i in server_ids])
    return {s.server_id: s for s in parse_all(ServerStats, raw)}


def parse_all(model: type[M], raw: list[Any]) -> list[M]:
    parsed = []
    for value in raw:
        if value is None:
            continue
        try:
            parsed.append(model.model_validate_json(value))
        except ValidationError:
            continue  # written by an incompatible version: treat as absent
    return parsed


def connect(url: str, *, name: str | None = None) -> redis.Redis:
    """A Redis client with short timeouts: live data is worth nothing late. `name` names its
    connections (`CLIENT SETNAME`)."""
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, client_name=name)
