"""The read model: how restreams read to their clients. PostgreSQL's rows (read by the
caller, a page at a time) meet Redis's live statistics and node leases here, in one round trip
for the whole page, whatever its size; every surface renders from a `Live`, and each value
that joins the two has one rule, here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from common import live
from common.definitions.restream import RestreamDefinition
from common.definitions.states import Phase
from common.ffmpeg.argv import ingest_url
from common.live import NodeLease, RestreamStats
from common.models import Restream


@dataclass(frozen=True)
class Live:
    """What Redis says about some restreams: their live statistics (of their current
    placement only) and the leases of their nodes."""

    stats: dict[str, RestreamStats] = field(default_factory=dict)
    leases: dict[str, NodeLease] = field(default_factory=dict)

    def of(self, restream: Restream) -> RestreamStats | None:
        return self.stats.get(restream.id)

    def lease_of(self, restream: Restream) -> NodeLease | None:
        """Its node's lease, while it is placed there."""
        if restream.node_name is None or restream.phase is not Phase.PLACED:
            return None
        return self.leases.get(restream.node_name)

    def last_error(self, restream: Restream) -> str | None:
        """Why its last attempt ended (PostgreSQL's, reported by its worker); while it runs,
        the last line its FFmpeg logged at error level (the live statistics')."""
        stats = self.of(restream)
        return restream.last_error or (stats.last_error if stats else None)

    def ingest_url(self, restream: Restream, definition: RestreamDefinition) -> str | None:
        """Where a publisher sends the stream of a placed listen input: its node's address
        (its name, while the lease cannot be read)."""
        if restream.node_name is None or restream.phase is not Phase.PLACED:
            return None
        if definition.input.input_stream_listen_port is None:
            return None
        lease = self.leases.get(restream.node_name)
        address = lease.address if lease is not None else restream.node_name
        return ingest_url(definition.input, address, restream.id)


@dataclass(frozen=True)
class Shown:
    """A stored definition as clients read it: parsed, and its parts in their JSON form.
    Shared between requests: read it, never change it (`service.definition_of` gives a
    definition of one's own)."""

    definition: RestreamDefinition
    restream_type: str
    input: dict[str, Any]
    transcoding: dict[str, Any] | None
    outputs: list[dict[str, Any]]


_SHOWN_KEPT = 4096  # definitions kept parsed, per API process (a few KiB each)
_shown: dict[str, tuple[dict[str, Any], Shown]] = {}
_shown_lock = threading.Lock()


def shown(restream: Restream) -> Shown:
    """Its definition as clients read it, parsed once per content: a list of hundreds does
    not validate hundreds of definitions that have not changed since the last read (a kept
    one is used only while the stored definition equals the one it was made from)."""
    stored = restream.definition
    kept = _shown.get(restream.id)
    if kept is not None and kept[0] == stored:
        return kept[1]
    definition = RestreamDefinition.model_validate(stored)
    made = Shown(
        definition=definition,
        restream_type=definition.restream_type(),
        input=definition.input.model_dump(mode="json", exclude_none=True),
        transcoding=(
            definition.transcoding.model_dump(mode="json", exclude_none=True)
            if definition.transcoding
            else None
        ),
        outputs=[o.model_dump(mode="json", exclude_none=True) for o in definition.outputs],
    )
    with _shown_lock:
        if len(_shown) >= _SHOWN_KEPT:
            _shown.pop(next(iter(_shown)))  # the oldest kept
        _shown[restream.id] = (stored, made)
    return made


def read(client: redis.Redis, restreams: Iterable[Restream]) -> Live:
    """The live side of `restreams`, in one round trip to Redis. Reads go on without Redis:
    nothing live then (the state and its reason are PostgreSQL's, kept true by the workers'
    own reports)."""
    rows = list(restreams)
    ids = [r.id for r in rows]
    nodes = sorted({r.node_name for r in rows if r.node_name is not None})
    if not ids:
        return Live()
    try:
        pipe = client.pipeline(transaction=False)
        pipe.mget([live.stats_key(i) for i in ids])
        if nodes:
            pipe.mget([live.lease_key(n) for n in nodes])
        found, *leased = pipe.execute()
    except redis.RedisError:
        return Live()
    stats = {s.restream_id: s for s in live.parse_all(RestreamStats, found)}
    leases = {lease.node: lease for lease in live.parse_all(NodeLease, leased[0] if leased else [])}
    return Live(_current(rows, stats), leases)


def _current(
    restreams: Sequence[Restream], found: dict[str, RestreamStats]
) -> dict[str, RestreamStats]:
    """Only the statistics of a restream's current placement: a lost node's last figures
    live on in Redis for a few seconds; they describe nothing that runs."""
    placed = {r.id: (r.node_name, r.generation) for r in restreams if r.phase is Phase.PLACED}
    return {
        rid: stats
        for rid, stats in found.items()
        if placed.get(rid) == (stats.node, stats.generation)
    }
