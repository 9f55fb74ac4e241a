"""The lifecycle of media server modules (SRT and RTMP servers): every write of a server's
desired and placed state is here; its node's worker writes only what it observes
(`report`).

A server is placed like a restream (`common.nodes.placement.place`): on a live, active node
that has its engine (the feature `srt-server` / `rtmp-server`) and its port free, among those
of its project's selector-free farm. Its node runs it (`worker.servers`); when that node is
lost (its lease lapsed), the reconciler places it elsewhere (`replace_lost`): its address
changes, its port and its stream ids do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from common import events, live
from common.accounts.principal import Principal, Role
from common.db import database_now
from common.definitions.server import ServerKind, ServerSpec, ServerState, ingest_url, play_url
from common.errors import Conflict, FieldProblem, ServerNotFound
from common.ids import new_id
from common.lifecycle import nodes
from common.lifecycle.placement_lock import lock_placement
from common.lifecycle.service import Farm, project_of, require
from common.live import ServerStats
from common.models import Server
from common.nodes.capabilities import Requirements
from common.nodes.capacity import Cost
from common.nodes.placement import Candidate, Placed, Unplaced, place
from common.servers import repository


def needs_of(spec: ServerSpec) -> Requirements:
    """What a server needs of a node: its engine and its port (its CPU is not reserved: an
    engine relays, it does not encode)."""
    return Requirements(
        encoders=frozenset(),
        cost=Cost(0),
        listen_port=spec.port_key,
        features=frozenset({spec.kind.feature}),
    )


def get(session: Session, principal: Principal, server_id: str, kind: ServerKind | None) -> Server:
    found = repository.get(session, server_id, principal.project_id, kind=kind)
    if found is None:
        raise ServerNotFound(server_id)
    return found


def list_all(session: Session, principal: Principal, kind: ServerKind | None) -> Sequence[Server]:
    return repository.all_in(session, principal.project_id, kind)


def create(
    session: Session, farm: Farm, principal: Principal, spec: ServerSpec, *, active: bool = True
) -> Server:
    """A new server of the principal's project, placed at once if `active`. A port no node
    has free is refused (nothing is written)."""
    require(principal, Role.OPERATOR)
    project_id = project_of(session, farm, principal)
    _check_name(session, project_id, spec, None)
    server = Server(
        id=new_id(),
        project_id=project_id,
        kind=spec.kind,
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        active=active,
    )
    session.add(server)
    session.flush()
    if active:
        place_now(session, farm, server, "created")
    return server


def update(
    session: Session,
    farm: Farm,
    principal: Principal,
    server_id: str,
    spec: ServerSpec,
    *,
    active: bool | None,
) -> Server:
    """New settings (its node restarts it with them) and, if given, a new `active`. A server
    keeps its node while its new port is free there."""
    require(principal, Role.OPERATOR)
    server = _locked(session, principal, server_id, spec.kind)
    _check_name(session, server.project_id, spec, server.id)
    server.spec = spec.model_dump(mode="json")
    server.name = spec.name
    server.modified_at = database_now(session)
    if active is not None:
        server.active = active
    if server.active:
        place_now(session, farm, server, "updated")
    else:
        _unplace(session, server, "stopped")
    return server


def start(
    session: Session, farm: Farm, principal: Principal, server_id: str, kind: ServerKind
) -> Server:
    require(principal, Role.OPERATOR)
    server = _locked(session, principal, server_id, kind)
    server.active = True
    if server.node_name is None:
        place_now(session, farm, server, "started")
    return server


def stop(session: Session, principal: Principal, server_id: str, kind: ServerKind) -> Server:
    """Not wanted any more: its node ends it (its publishers and players are dropped)."""
    require(principal, Role.OPERATOR)
    server = _locked(session, principal, server_id, kind)
    server.active = False
    _unplace(session, server, "stopped")
    return server


def remove(session: Session, principal: Principal, server_id: str, kind: ServerKind) -> None:
    """Gone: its node ends it. Restreams reading it wait, saying it is gone."""
    require(principal, Role.OPERATOR)
    server = _locked(session, principal, server_id, kind)
    session.delete(server)


def place_now(session: Session, farm: Farm, server: Server, why: str) -> None:
    """Place a wanted server: beside where it is, if its port is free there, else wherever
    it fits. A port taken on every capable node is refused (`Conflict` naming server_port;
    the transaction rolls back); any other shortfall leaves it pending, saying why."""
    lock_placement(session)
    candidates = [_without(c, server) for c in nodes.candidates(session, farm.redis)]
    result = place_server(server, candidates)
    if isinstance(result, Unplaced) and result.kind == "port":
        problem = FieldProblem("server_port", result.reason)
        raise Conflict(f"server_port: {result.reason}", [problem])
    _apply(session, server, result, why)


def place_server(server: Server, candidates: Sequence[Candidate]) -> Placed | Unplaced:
    needs = needs_of(server.settings)
    if server.node_name is not None and any(c.name == server.node_name for c in candidates):
        here = place(replace(needs, colocate=server.node_name), candidates)
        if isinstance(here, Placed):
            return here
    return place(needs, candidates)


def replace_lost(
    session: Session, candidates: Sequence[Candidate], held: set[str], judge: bool
) -> int:
    """The reconciler's part: place wanted servers that have no node, or whose node is lost
    (no lease: its worker and its engines are gone); unplace those no longer wanted. Returns
    how many it changed."""
    changed = 0
    nodes = list(candidates)  # each placement adds to what the next one sees
    for server in repository.wanted(session, for_update=True):
        if not server.active:
            _unplace(session, server, "stopped")
            changed += 1
            continue
        lost = server.node_name is not None and server.node_name not in held and judge
        if server.node_name is not None and not lost:
            continue
        before = server.shown
        if lost:
            server.node_name = None  # what it held there is no more
        result = place_server(server, [_without(c, server) for c in nodes])
        if isinstance(result, Placed):
            at = next(i for i, c in enumerate(nodes) if c.name == result.node)
            nodes[at] = nodes[at].taking(needs_of(server.settings), None, f"server {server.id}")
        why = "its node was lost" if lost else "waiting for a node"
        if _apply(session, server, result, why, before):
            changed += 1
    return changed


def report(
    session: Session, server: Server, node: str, state: ServerState, reason: str | None
) -> bool:
    """What its node observes (running, or failed with why): True if it changed."""
    if (server.run_node, server.run_state, server.run_reason) == (node, state, reason):
        return False
    before = server.shown
    server.run_node, server.run_state, server.run_reason = node, state, reason
    _event(session, server, before, reason or f"{state.value} on {node}")
    return True


def _apply(
    session: Session,
    server: Server,
    result: Placed | Unplaced,
    why: str,
    before: ServerState | None = None,
) -> bool:
    """Where it goes, or why it waits; `before`: its state as shown before this change began
    (if not as it reads now). True if anything changed."""
    before = before or server.shown
    node, reason = server.node_name, server.reason
    if isinstance(result, Placed):
        server.node_name, server.reason = result.node, None
        if node != result.node:
            server.run_node = server.run_state = server.run_reason = None
    else:
        server.node_name, server.reason = None, result.reason
    if (node, reason) == (server.node_name, server.reason):
        return False
    where = f"placed on {server.node_name}" if server.node_name else f"waiting: {server.reason}"
    _event(session, server, before, f"{why}; {where}")
    return True


def _unplace(session: Session, server: Server, why: str) -> None:
    before = server.shown
    server.node_name = server.reason = None
    server.run_node = server.run_state = server.run_reason = None
    if before is not server.shown:
        _event(session, server, before, why)


def _event(session: Session, server: Server, before: ServerState, reason: str) -> None:
    events.record(
        session,
        subject_kind=events.SERVER,
        subject_id=server.id,
        reason=reason,
        from_state=before.value,
        to_state=server.shown.value,
        project_id=server.project_id,
        node_name=server.node_name,
    )


def _without(candidate: Candidate, server: Server) -> Candidate:
    """A node as placement sees it, less what this server itself holds there."""
    mine = f"server {server.id}"
    if mine not in candidate.ports.values():
        return candidate
    ports = {port: holder for port, holder in candidate.ports.items() if holder != mine}
    return replace(candidate, ports=ports)


def _check_name(session: Session, project_id: str, spec: ServerSpec, besides: str | None) -> None:
    if repository.name_taken(session, project_id, spec.kind, spec.name, besides=besides):
        problem = FieldProblem("server_name", f"taken by another {spec.kind.value} server")
        message = f"server_name: an {spec.kind.value.upper()} server named {spec.name!r} exists"
        raise Conflict(message, [problem])


def _locked(session: Session, principal: Principal, server_id: str, kind: ServerKind) -> Server:
    server = repository.get(session, server_id, principal.project_id, kind=kind, for_update=True)
    if server is None:
        raise ServerNotFound(server_id)
    database_now(session)
    return server


# -- how a server reads --------------------------------------------------------------------


@dataclass(frozen=True)
class ServerView:
    """A server as surfaces show it: its state, where it runs, its URLs and live streams."""

    server: Server
    state: ServerState
    reason: str | None
    address: str | None  # its node's, while it is placed on a live node
    stats: ServerStats | None

    @property
    def ingest_url(self) -> str | None:
        return ingest_url(self.server.settings, self.address) if self.address else None

    @property
    def play_url(self) -> str | None:
        return play_url(self.server.settings, self.address) if self.address else None


def views(farm: Farm, servers: Sequence[Server]) -> list[ServerView]:
    """Each server with its node's address and its live statistics, in two Redis reads."""
    leases = live.read_leases(farm.redis, sorted({s.node_name for s in servers if s.node_name}))
    stats = live.read_server_stats(farm.redis, [s.id for s in servers])
    shown = []
    for server in servers:
        lease = leases.get(server.node_name) if server.node_name else None
        mine = stats.get(server.id)
        if mine is not None and mine.node != server.node_name:
            mine = None  # from where it ran before
        shown.append(
            ServerView(
                server,
                server.shown,
                server.shown_reason,
                lease.address if lease else None,
                mine,
            )
        )
    return shown
