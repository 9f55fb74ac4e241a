"""Node registration, state changes and the live view placement works from. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from sqlalchemy import CompoundSelect, ScalarSelect, Select, func, literal_column, select, union_all
from sqlalchemy.orm import Session

from common import events, live
from common.accounts.principal import Principal, Role
from common.db import database_now
from common.definitions.node import NodeCapabilities
from common.definitions.states import NODE_TRANSITIONS, NodeState
from common.errors import Forbidden, NodeNotFound
from common.lifecycle import commands
from common.models import Node
from common.nodes import repository
from common.nodes.capabilities import capacity_of
from common.nodes.capacity import ENGINE_UNITS, U30_ENGINES, U30Load, Usage
from common.nodes.placement import Candidate, candidate_of
from common.restreams import holdings
from common.restreams import repository as restreams
from common.servers import repository as servers


def transition(session: Session, node: Node, target: NodeState, reason: str) -> None:
    """Move `node` to `target` through the declared table, recording why."""
    current = node.state
    NODE_TRANSITIONS.check(current, target)
    node.state = target
    node.state_changed_at = database_now(session)
    events.record(
        session,
        subject_kind=events.NODE,
        subject_id=node.name,
        from_state=current.value,
        to_state=target.value,
        reason=reason,
        node_name=node.name,
    )


def register(
    session: Session, name: str, capabilities: NodeCapabilities, labels: dict[str, str]
) -> Node:
    """A worker announces itself at start: known again, or new. Draining stays draining."""
    node = repository.upsert(session, name, capabilities.model_dump(mode="json"), labels)
    if node.state is NodeState.OFFLINE:
        transition(session, node, NodeState.ACTIVE, "worker registered")
    return node


def _placement_view() -> Select[Any]:
    """The active nodes, what is placed on each, and the ports held there, in one statement
    (each a JSON array, its rows as objects whose values come in column order)."""

    def rows(statement: Select[Any] | CompoundSelect[Any]) -> ScalarSelect[Any]:
        each = statement.subquery("each")
        return select(func.json_agg(literal_column("each"))).select_from(each).scalar_subquery()

    names = select(func.json_agg(Node.name)).where(Node.state == NodeState.ACTIVE)
    return select(
        names.scalar_subquery(),
        rows(holdings.usage_statement()),
        rows(union_all(holdings.port_holdings(), servers.port_holdings())),
    )


_PLACEMENT_VIEW = _placement_view()


def candidates(session: Session, client: redis.Redis) -> list[Candidate]:
    """Active nodes that hold a lease right now, with what is already placed on them: one
    statement (a start's placement waits for it), one read of Redis."""
    names, used, held = session.execute(_PLACEMENT_VIEW).one()
    names = names or []
    leases = live.read_leases(client, names)
    usage = holdings.usage_from_rows([list(row.values()) for row in used or []])
    ports = holdings.ports_from_rows([list(row.values()) for row in held or []])
    return [
        candidate_of(name, leases[name], usage.get(name, Usage()), ports.get(name, {}))
        for name in names
        if name in leases
    ]


def _require_farm_admin(principal: Principal) -> None:
    if not principal.farm_wide or principal.role is not Role.ADMIN:
        raise Forbidden("nodes are managed with farm-wide admin credentials only")


def get(session: Session, principal: Principal, name: str, *, for_update: bool = False) -> Node:
    _require_farm_admin(principal)
    node = repository.get(session, name, for_update=for_update)
    if node is None:
        raise NodeNotFound(name)
    return node


def drain(session: Session, principal: Principal, name: str) -> Node:
    """Take no new restreams on `name` and move its restreams elsewhere (stop there, start
    elsewhere). Stays draining, across worker restarts, until undrained."""
    node = get(session, principal, name, for_update=True)
    if node.state is NodeState.ACTIVE:
        transition(session, node, NodeState.DRAINING, "drain requested")
    evacuate(session, name, notify=True)
    return node


def undrain(session: Session, principal: Principal, name: str) -> Node:
    node = get(session, principal, name, for_update=True)
    if node.state is NodeState.DRAINING:
        transition(session, node, NodeState.ACTIVE, "undrain requested")
    return node


CORDONED = "its Kubernetes node is cordoned"


def follow_cordon(session: Session, name: str, cordoned: bool) -> None:
    """A worker saw its Kubernetes node cordoned (or marked for removal): drain, as an
    operator's drain does, before `kubectl drain` or an autoscaler takes the machine away.
    Uncordoned: active again, if the cordon is what drained it (an operator's drain stays)."""
    node = repository.get(session, name, for_update=True)
    if node is None:
        return
    if cordoned and node.state is NodeState.ACTIVE:
        transition(session, node, NodeState.DRAINING, CORDONED)
        evacuate(session, name, notify=True)
    elif not cordoned and node.state is NodeState.DRAINING:
        last = events.history(session, events.NODE, name, limit=1)
        if last and last[-1].reason == CORDONED:
            transition(session, node, NodeState.ACTIVE, "its Kubernetes node is uncordoned")


def evacuate(session: Session, name: str, *, notify: bool) -> list[str]:
    """Put every restream placed on `name` in STOPPING, still wanted: once its FFmpeg is gone
    it is placed elsewhere. `notify` sends the node the stops (a node draining itself does
    not need them). Rows busy in another transaction are left to the reconciler."""
    moved = []
    for restream in restreams.placed_on(session, name, skip_locked=True):
        commands.move(session, restream, f"node {name} is draining: moving", notify=notify)
        moved.append(restream.id)
    return moved


@dataclass(frozen=True)
class NodeView:
    """A node as operators see it: its row, its lease if it holds one, what is placed on it."""

    node: Node
    lease: live.NodeLease | None
    usage: Usage


def overview(session: Session, client: redis.Redis, principal: Principal) -> list[NodeView]:
    """Every node with its lease and its reserved capacity. Farm-wide credentials only."""
    _require_farm_admin(principal)
    rows = repository.all_nodes(session)
    leases = live.read_leases(client, [n.name for n in rows])
    usage = holdings.usage_by_node(session)
    return [NodeView(n, leases.get(n.name), usage.get(n.name, Usage())) for n in rows]


def view(session: Session, client: redis.Redis, node: Node) -> NodeView:
    """One node as `overview` shows it."""
    lease = live.read_leases(client, [node.name]).get(node.name)
    return NodeView(node, lease, holdings.usage_by_node(session).get(node.name, Usage()))


def capacity_view(capabilities: NodeCapabilities, usage: Usage) -> dict[str, Any]:
    """Capacity, reserved and free: CPU millicores, and XRM units per U30 device and engine."""
    capacity = capacity_of(capabilities)
    devices = {}
    for device in capacity.u30_devices:
        load = usage.u30.get(device, U30Load())
        devices[str(device)] = {
            engine: {
                "reserved": getattr(load, engine),
                "free": ENGINE_UNITS - getattr(load, engine),
            }
            for engine in U30_ENGINES
        }
    return {
        "cpu_millicores": {
            "capacity": capacity.cpu_millicores,
            "reserved": usage.cpu_millicores,
            "free": capacity.cpu_millicores - usage.cpu_millicores,
        },
        "u30": devices,
    }
