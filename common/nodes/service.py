"""Node registration, state changes and the live view placement works from. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import redis
from sqlalchemy.orm import Session

from common import events, live
from common.accounts.principal import Principal
from common.errors import Forbidden
from common.models import Node
from common.nodes import repository
from common.nodes.capabilities import encoders_of
from common.nodes.placement import Candidate
from common.nodes.states import NODE_TRANSITIONS, NodeState
from common.restreams import repository as restreams


def transition(session: Session, node: Node, target: NodeState, reason: str) -> None:
    """Move `node` to `target` through the declared table, recording why."""
    current = node.state
    NODE_TRANSITIONS.check(current, target)
    node.state = target
    node.state_changed_at = datetime.now(UTC)
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
    session: Session, name: str, capabilities: dict[str, Any], labels: dict[str, str]
) -> Node:
    """A worker announces itself at start: known again, or new. Draining stays draining."""
    node = repository.upsert(session, name, capabilities, labels)
    if node.state is NodeState.OFFLINE:
        transition(session, node, NodeState.ACTIVE, "worker registered")
    return node


def candidates(session: Session, client: redis.Redis) -> list[Candidate]:
    """Active nodes that hold a lease right now, with their current load."""
    nodes = [n for n in repository.all_nodes(session) if n.state is NodeState.ACTIVE]
    leases = live.read_leases(client, [n.name for n in nodes])
    return candidates_from(nodes, leases, restreams.load_by_node(session))


def candidates_from(
    nodes: Sequence[Node], leases: dict[str, live.NodeLease], load: dict[str, int]
) -> list[Candidate]:
    return [
        Candidate(
            name=node.name,
            address=leases[node.name].address,
            encoders=encoders_of(leases[node.name].capabilities),
            load=load.get(node.name, 0),
        )
        for node in nodes
        if node.state is NodeState.ACTIVE and node.name in leases
    ]


def overview(
    session: Session, client: redis.Redis, principal: Principal
) -> list[tuple[Node, live.NodeLease | None]]:
    """Every node with its lease, if it holds one. Farm-wide credentials only."""
    if not principal.farm_wide:
        raise Forbidden("nodes are visible to farm-wide credentials only")
    rows = repository.all_nodes(session)
    leases = live.read_leases(client, [n.name for n in rows])
    return [(node, leases.get(node.name)) for node in rows]
