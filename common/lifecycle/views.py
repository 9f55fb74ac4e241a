"""The read model: how restreams read to their clients. PostgreSQL's rows (read by the
caller, a page at a time) meet Redis's live statistics and node leases here, in one round trip
for the whole page, whatever its size; every surface renders from a `Live`, and each value
that joins the two has one rule, here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis
from sqlalchemy.orm import Session

from common import live
from common.definitions.kinds import OutputType
from common.definitions.restream import RestreamDefinition
from common.definitions.states import Phase
from common.ffmpeg.argv import ingest_url
from common.ffmpeg.outputs import DASH_MANIFEST, HLS_PLAYLIST
from common.live import NodeLease, RestreamStats
from common.models import Restream
from common.restreams import repository
from common.restreams.filters import EVERY, Filters
from common.restreams.repository import Listed

V = TypeVar("V")

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

    def playback(self, restream: Row, definition: RestreamDefinition) -> dict[str, str]:
        """Where viewers play its HLS and DASH outputs while it is placed, by output id: its
        node's playback base URL (none if the node serves none)."""
        lease = self.lease_of(restream)
        base = lease.capabilities.playback_base_url if lease is not None else None
        if not base:
            return {}
        files = {OutputType.HLS: HLS_PLAYLIST, OutputType.DASH: DASH_MANIFEST}
        return {
            str(output.id): f"{base}/live/{restream.id}/{output.id}/{files[output.output_type]}"
            for output in definition.outputs
            if output.output_type in files
        }


@dataclass(frozen=True)
class Shown:
    """A stored definition as clients read it: parsed, and its parts in their JSON form.
    Shared between requests: read it, never change it (`service.definition_of` gives a
    definition of one's own)."""

    definition: RestreamDefinition
    restream_type: str
    input: dict[str, Any]
    inputs: list[dict[str, Any]]  # the input, then its backup if it has one
    continuity: dict[str, Any] | None
    transcoding: dict[str, Any] | None
    outputs: list[dict[str, Any]]


class Kept(Generic[V]):
    """What a read made of each restream, kept between requests by this API process: at most
    `size` restreams' (the one kept longest dropped first), shared by its request threads."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._values: dict[str, V] = {}
        self._lock = threading.Lock()

    def get(self, restream_id: str) -> V | None:
        return self._values.get(restream_id)

    def put(self, restream_id: str, value: V) -> None:
        with self._lock:
            if restream_id not in self._values and len(self._values) >= self.size:
                self._values.pop(next(iter(self._values)))
            self._values[restream_id] = value


@dataclass
class _Parsed:
    stored: dict[str, Any]
    text: str | None  # PostgreSQL's text of `stored`, once a list read it so
    shown: Shown


_shown: Kept[_Parsed] = Kept()  # a few KiB each


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
    _shown.put(restream.id, _Parsed(stored, text, made))
    return made


def _show(definition: RestreamDefinition) -> Shown:
    return Shown(
        definition=definition,
        restream_type=definition.restream_type(),
        input=definition.input.model_dump(mode="json", exclude_none=True),
        inputs=[
            spec.model_dump(mode="json", exclude_none=True)
            for spec in (definition.input, definition.backup_input)
            if spec is not None
        ],
        continuity=(
            definition.continuity.model_dump(mode="json") if definition.continuity else None
        ),
        transcoding=(
            definition.transcoding.model_dump(mode="json", exclude_none=True)
            if definition.transcoding
            else None
        ),
        outputs=[o.model_dump(mode="json", exclude_none=True) for o in definition.outputs],
    )


# A kept row is read again after this long whatever its version says: the version is a 32-bit
# transaction counter, which comes round (after billions of transactions).
_LISTED_KEPT_S = 60.0
_listed: Kept[tuple[float, Listed]] = Kept()


def page(
    session: Session,
    project_id: str | None,
    *,
    limit: int | None,
    offset: int,
    filters: Filters = EVERY,
) -> tuple[list[Listed], int]:
    """One page of restreams as lists read them, and how many there are: the ids and row
    versions first, then only the rows that changed since this process last read them (a
    list of hundreds that changed little costs one narrow query, not hundreds of rows)."""
    wanted, total = repository.versions(
        session, project_id, limit=limit, offset=offset, filters=filters
    )
    now = time.monotonic()
    rows: dict[str, Listed] = {}
    for restream_id, version in wanted:
        kept = _listed.get(restream_id)
        if kept is not None and kept[1].version == version and now - kept[0] < _LISTED_KEPT_S:
            rows[restream_id] = kept[1]
    changed = [restream_id for restream_id, _ in wanted if restream_id not in rows]
    if changed:
        fresh = repository.listed(session, changed)
        rows.update((row.id, row) for row in fresh)
        for row in fresh:
            _listed.put(row.id, (now, row))
    found = [rows[restream_id] for restream_id, _ in wanted if restream_id in rows]
    return found, total


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
