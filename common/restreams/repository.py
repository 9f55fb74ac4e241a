"""All SQL about restreams. A `project_id` of None means "every project" (farm-wide)."""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Select,
    String,
    Text,
    Update,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from common.db import keep_database_now
from common.definitions.restream import restream_type
from common.definitions.states import (
    Phase,
    RunState,
    ShowsState,
)
from common.models import Restream
from common.restreams.filters import EVERY, Filters


def _scoped(statement: Select[Restream], project_id: str | None) -> Select[Restream]:
    return statement if project_id is None else statement.where(Restream.project_id == project_id)


def get(
    session: Session, restream_id: str, project_id: str | None, *, for_update: bool = False
) -> Restream | None:
    statement = _scoped(select(Restream).where(Restream.id == restream_id), project_id)
    if for_update:
        statement = statement.with_for_update()
    return session.execute(statement).scalar_one_or_none()


def lock(session: Session, restream_id: str, project_id: str | None) -> Restream | None:
    """The restream, locked for this transaction, with PostgreSQL's clock read once the lock
    is held kept as the transaction's time (`database_now`): one statement, not two. The lock
    is taken in a materialised CTE, so that the clock is read after any wait for it, and the
    row returned is the version the lock holds."""
    params = {"locked_id": restream_id, "locked_project": project_id}
    row = session.execute(_LOCK[project_id is not None], params).first()
    if row is None:
        return None
    restream: Restream = row[0]
    keep_database_now(session, row[1])
    return restream


def _locked(scoped: bool) -> CTE:
    """The restream `locked_id` (of project `locked_project` if `scoped`), locked, in a
    materialised CTE. (Parameters named after no column: an UPDATE beside it would take
    those as the values to set.)"""
    statement = select(Restream).where(Restream.id == bindparam("locked_id"))
    if scoped:
        statement = statement.where(Restream.project_id == bindparam("locked_project"))
    return statement.with_for_update().cte("locked").prefix_with("MATERIALIZED")


# Built once: building the statement cost as much as a round trip to run it.
_LOCK = {
    scoped: select(aliased(Restream, locked), func.clock_timestamp())
    for scoped, locked in ((s, _locked(s)) for s in (False, True))
}


@functools.cache
def _lock_and_write(write: Update) -> Select[Any]:
    locked = _locked(scoped=False)
    written = (
        write.where(exists(select(literal_column("1")).select_from(locked)))
        .returning(literal_column("1"))
        .cte("written")
    )
    changed = select(func.count()).select_from(written).scalar_subquery()
    return select(aliased(Restream, locked), func.clock_timestamp(), changed)


def lock_and_write(
    session: Session, restream_id: str, write: Update, params: dict[str, Any]
) -> tuple[Restream | None, int]:
    """`lock`, and `write` — an UPDATE of rows that come after the restream's in the lock
    order (its runs), bound to `restream_id` and `params` — in the same statement, once the
    restream's row is locked: one round trip, not two. The restream (None if there is none)
    and how many rows `write` changed. Built once for each `write` (keep it, as
    `runs.set_once` does).

    The write waits for the lock: it reads the locked row (`EXISTS`), and the statement asks
    for its count only once that row is out. With no row it still runs, and changes none."""
    statement = _lock_and_write(write)
    row = session.execute(statement, {"locked_id": restream_id, **params}).first()
    if row is None:
        return None, 0
    restream: Restream = row[0]
    keep_database_now(session, row[1])
    return restream, int(row[2])


def by_number(session: Session, number: int, project_id: str | None) -> Restream | None:
    statement = _scoped(select(Restream).where(Restream.number == number), project_id)
    return session.execute(statement).scalar_one_or_none()


def followers(session: Session, source_id: str, *, for_update: bool = False) -> list[Restream]:
    """The restreams fed by `source_id`'s relay."""
    statement = select(Restream).where(Restream.source_id == source_id).order_by(Restream.number)
    if for_update:
        statement = statement.with_for_update()
    return list(session.execute(statement).scalars())


def followers_of(session: Session, source_ids: Sequence[str]) -> dict[str, list[Restream]]:
    """The restreams fed by each of `source_ids`' relays, in one query."""
    found: dict[str, list[Restream]] = {source_id: [] for source_id in source_ids}
    if not source_ids:
        return found
    statement = select(Restream).where(Restream.source_id.in_(source_ids)).order_by(Restream.number)
    for restream in session.execute(statement).scalars():
        assert restream.source_id is not None
        found[restream.source_id].append(restream)
    return found


def listen_ports(session: Session) -> set[int]:
    """Every port a restream of the farm listens on (placed or not)."""
    port = Restream.definition["input"]["input_stream_listen_port"]["port"].as_integer()
    return {p for (p,) in session.execute(select(port).where(port.is_not(None)))}


@dataclass(frozen=True)
class Listed(ShowsState):
    """A restream as a list reads it: the columns its clients see, not the surface's own
    (attributes, holds), and its definition as PostgreSQL's text of it — parsed only when it
    changed (`common.lifecycle.views.shown`). A page of hundreds costs a few milliseconds,
    against several times that for mapped rows."""

    id: str
    project_id: str
    name: str
    active: bool
    generation: int
    revision: int
    node_name: str | None
    phase: Phase
    phase_reason: str | None
    phase_changed_at: datetime
    run_state: RunState | None
    run_generation: int | None
    run_reason: str | None
    run_changed_at: datetime | None
    last_error: str | None
    created_at: datetime
    modified_at: datetime
    start_at: datetime | None
    stop_at: datetime | None
    run_for_s: int | None
    definition_json: str
    version: int  # of its row: new with every change of it (`versions`)


# A row's version: the transaction that wrote it (PostgreSQL's `xmin`), new with every change.
_VERSION: ColumnElement[int] = literal_column("restreams.xmin::text::bigint", BigInteger)

_LISTED = (
    Restream.id,
    Restream.project_id,
    Restream.name,
    Restream.active,
    Restream.generation,
    Restream.revision,
    Restream.node_name,
    Restream.phase,
    Restream.phase_reason,
    Restream.phase_changed_at,
    Restream.run_state,
    Restream.run_generation,
    Restream.run_reason,
    Restream.run_changed_at,
    Restream.last_error,
    Restream.created_at,
    Restream.modified_at,
    Restream.start_at,
    Restream.stop_at,
    Restream.run_for_s,
    cast(Restream.definition, Text),
    _VERSION,
)


def versions(
    session: Session,
    project_id: str | None,
    *,
    limit: int | None,
    offset: int,
    filters: Filters = EVERY,
) -> tuple[list[tuple[str, int]], int]:
    """The ids of one page of restreams, oldest first (in order of creation), with the
    versions of their rows — what a list reads first, to read again only what changed — and
    how many there are in all (counted by the same query, unless the page is empty); `limit`
    None: every one from `offset` on. Plain
    rows, through the session's connection: the ORM's handling of a statement that loads no
    entity took half the time of a page of 500."""
    statement = select(Restream.id, _VERSION, func.count().over())
    if project_id is not None:
        statement = statement.where(Restream.project_id == project_id)
    statement = statement.where(*filters.conditions())
    rows = (
        session.connection()
        .execute(
            statement.order_by(Restream.created_at, Restream.number).limit(limit).offset(offset)
        )
        .all()
    )
    total = rows[0][2] if rows else count(session, project_id, filters)
    return [(restream_id, version) for restream_id, version, _ in rows], total


def listed(session: Session, ids: Collection[str], project_id: str | None = None) -> list[Listed]:
    """These restreams as lists read them (of `project_id` only, if given), in no particular
    order (gone ones left out)."""
    statement = select(*_LISTED).where(Restream.id.in_(list(ids)))
    if project_id is not None:
        statement = statement.where(Restream.project_id == project_id)
    rows: Iterable[Sequence[Any]] = session.connection().execute(statement)
    return [Listed(*row) for row in rows]


# One restream as a list reads it, of a project or of any (`project` NULL): built once, as a
# client polling one restream asks it again and again.
_ONE_LISTED = select(*_LISTED).where(
    Restream.id == bindparam("id"),
    or_(bindparam("project", type_=String).is_(None), Restream.project_id == bindparam("project")),
)


def one_listed(session: Session, restream_id: str, project_id: str | None) -> Listed | None:
    """`listed` for one restream (None if it is gone, or not `project_id`'s)."""
    rows: Iterable[Sequence[Any]] = session.connection().execute(
        _ONE_LISTED, {"id": restream_id, "project": project_id}
    )
    return next((Listed(*row) for row in rows), None)


def count(session: Session, project_id: str | None, filters: Filters = EVERY) -> int:
    statement = select(func.count()).select_from(Restream).where(*filters.conditions())
    if project_id is not None:
        statement = statement.where(Restream.project_id == project_id)
    return session.execute(statement).scalar_one()


def all_in(session: Session, project_id: str | None) -> Sequence[Restream]:
    return list(
        session.execute(
            # created_at ties within one transaction; the number tells the order of creation
            _scoped(select(Restream), project_id).order_by(Restream.created_at, Restream.number)
        )
        .scalars()
        .all()
    )


def iso_ms(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond (`2026-12-05T07:21:11.457Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_ms_in_sql(column: InstrumentedAttribute[datetime]) -> ColumnElement[str]:
    """`iso_ms`, by PostgreSQL (a list of hundreds spends no time on it)."""
    return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')


@dataclass(frozen=True)
class Summary:
    """A restream in a list that shows no more than its name, kind and times: read without
    loading its row or its definition (Callaba's getAll of hundreds stays a few milliseconds)."""

    id: str
    name: str
    active: bool
    created: str  # ISO 8601 in UTC to the millisecond, as JavaScript's toISOString
    modified: str
    input_type: str
    first_output_type: str

    @classmethod
    def of(cls, restream: Restream) -> Summary:
        definition = restream.definition
        return cls(
            restream.id,
            restream.name,
            restream.active,
            iso_ms(restream.created_at),
            iso_ms(restream.modified_at),
            definition["input"]["input_type"],
            definition["outputs"][0]["output_type"],
        )

    @property
    def restream_type(self) -> str:
        return restream_type(self.input_type, self.first_output_type)


def summaries(session: Session, project_id: str | None) -> list[Summary]:
    """Every restream (of a project), in order of creation, as summaries."""
    statement = select(
        Restream.id,
        Restream.name,
        Restream.active,
        _iso_ms_in_sql(Restream.created_at),
        _iso_ms_in_sql(Restream.modified_at),
        Restream.definition["input"]["input_type"].astext,
        Restream.definition["outputs"][0]["output_type"].astext,
    )
    if project_id is not None:
        statement = statement.where(Restream.project_id == project_id)
    statement = statement.order_by(Restream.created_at, Restream.number)
    return [Summary(*row) for row in session.execute(statement)]


def sources_of_surface(
    session: Session, surface: str, project_id: str | None, *, limit: int, offset: int
) -> tuple[list[Restream], int]:
    """One page of the restreams a surface created that no other restream feeds (a vendor's
    streams, not their platforms), oldest first, and how many there are in all."""
    marked = [Restream.surface == surface, Restream.source_id.is_(None)]
    if project_id is not None:
        marked.append(Restream.project_id == project_id)
    rows = session.execute(
        select(Restream).where(*marked).order_by(Restream.number).limit(limit).offset(offset)
    ).scalars()
    count = session.execute(select(func.count()).select_from(Restream).where(*marked))
    return list(rows), count.scalar_one()


def name_taken(
    session: Session, project_id: str, name: str, *, except_id: str | None = None
) -> bool:
    statement = select(Restream.id).where(Restream.project_id == project_id, Restream.name == name)
    if except_id is not None:
        statement = statement.where(Restream.id != except_id)
    return session.execute(statement.limit(1)).first() is not None


def runnable_on(session: Session, node: str, phases: frozenset[Phase]) -> dict[str, int]:
    """Restream id -> generation of the active restreams on `node` in `phases`."""
    rows = session.execute(
        select(Restream.id, Restream.generation).where(
            Restream.node_name == node, Restream.active.is_(True), Restream.phase.in_(phases)
        )
    )
    return {restream_id: generation for restream_id, generation in rows}  # noqa: C416


def placed_on(session: Session, node: str, *, skip_locked: bool = False) -> Sequence[Restream]:
    """The restreams placed on `node` (starting, running, retrying), locked."""
    return list(
        session.execute(
            select(Restream)
            .where(Restream.node_name == node, Restream.phase == Phase.PLACED)
            .order_by(Restream.id)
            .with_for_update(skip_locked=skip_locked)
        )
        .scalars()
        .all()
    )
