"""The read model: how restreams read to their clients. PostgreSQL's rows (read by the
caller, a page at a time) meet Redis's live statistics and node leases here, in one round trip
for the whole page, whatever its size; every surface renders from a `Live`, and each value
that joins the two has one rule, here.
"""

from __future__ import annotations

import json
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
from common.restreams.repository import Listed

# A restream as read: its mapped row, or the plain row a list reads.
Row = Restream | Listed


@dataclass(frozen=True)
class Live:
    """What Redis says about some restreams: their live statistics (of their current
    placement only) and the leases of their nodes."""

    stats: dict[str, RestreamStats] = field(default_factory=dict)
    leases: dict[str, NodeLease] = field(default_factory=dict)

    def of(self, restream: Row) -> RestreamStats | None:
        return self.stats.get(restream.id)

    def lease_of(self, restream: Row) -> NodeLease | None:
        """Its node's lease, while it is placed there."""
        if restream.node_name is None or restream.phase is not Phase.PLACED:
            return None
        return self.leases.get(restream.node_name)

    def last_error(self, restream: Row) -> str | None:
        """Why its last attempt ended (PostgreSQL's, reported by its worker); while it runs,
        the last line its FFmpeg logged at error level (the live statistics')."""
        stats = self.of(restream)
        return restream.last_error or (stats.last_error if stats else None)

    def ingest_url(self, restream: Row, definition: RestreamDefinition) -> str | None:
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


@dataclass
class _Kept:
    stored: dict[str, Any]
    text: str | None  # PostgreSQL's text of `stored`, once a list read it so
    shown: Shown


_SHOWN_KEPT = 4096  # definitions kept parsed, per API process (a few KiB each)
_shown: dict[str, _Kept] = {}
_shown_lock = threading.Lock()


def shown(restream: Row) -> Shown:
    """Its definition as clients read it, parsed once per content: a list of hundreds does
    not validate hundreds of definitions that have not changed since the last read (a kept
    one is used only while the stored definition equals the one it was made from; a list's
    row, which has PostgreSQL's text of it, compares that text)."""
    kept = _shown.get(restream.id)
    if isinstance(restream, Listed):
        text: str | None = restream.definition_json
        if kept is not None and kept.text == text:
            return kept.shown
        stored = json.loads(restream.definition_json)
    else:
        text, stored = None, restream.definition
    if kept is not None and kept.stored == stored:
        kept.text = text or kept.text
        return kept.shown
    made = _show(RestreamDefinition.model_validate(stored))
    with _shown_lock:
        if len(_shown) >= _SHOWN_KEPT:
            _shown.pop(next(iter(_shown)))  # the oldest kept
        _shown[restream.id] = _Kept(stored, text, made)
    return made


def _show(definition: RestreamDefinition) -> Shown:
    return Shown(
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


def read(client: redis.Redis, restreams: Iterable[Row]) -> Live:
    """The live side of `restreams`, in one round trip to Redis: the statistics of those
    placed on a node (no other's describe anything that runs) and the leases of their nodes.
    Reads go on without Redis: nothing live then (the state and its reason are PostgreSQL's,
    kept true by the workers' own reports)."""
    every = list(restreams)
    rows = [r for r in every if r.phase is Phase.PLACED]
    ids = [r.id for r in rows]
    nodes = sorted({r.node_name for r in every if r.node_name is not None})
    if not ids and not nodes:
        return Live()
    try:
        pipe = client.pipeline(transaction=False)
        for keys in ([live.stats_key(i) for i in ids], [live.lease_key(n) for n in nodes]):
            if keys:
                pipe.mget(keys)
        answers = pipe.execute()
    except redis.RedisError:
        return Live()
    found = answers.pop(0) if ids else []
    leased = answers.pop(0) if nodes else []
    stats = {s.restream_id: s for s in live.parse_all(RestreamStats, found)}
    leases = {lease.node: lease for lease in live.parse_all(NodeLease, leased)}
    return Live(_current(rows, stats), leases)


def _current(restreams: Sequence[Row], found: dict[str, RestreamStats]) -> dict[str, RestreamStats]:
    """Only the statistics of a restream's current placement: a lost node's last figures
    live on in Redis for a few seconds; they describe nothing that runs."""
    placed = {r.id: (r.node_name, r.generation) for r in restreams if r.phase is Phase.PLACED}
    return {
        rid: stats
        for rid, stats in found.items()
        if placed.get(rid) == (stats.node, stats.generation)
    }
