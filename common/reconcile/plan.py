"""The reconciler's plan: desired state + observed state -> actions. Pure (DESIGN §2, §4).

Level-triggered: the plan looks only at what is, never at what happened, so a lost message
or a crashed reconciler is healed by the next round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from common.live import NodeLease
from common.nodes.capabilities import Requirements, encoders_of
from common.nodes.placement import Candidate, Placed, Policy, place
from common.nodes.states import NodeState
from common.restreams.states import PLACED_STATES, UNPLACED_WANTED_STATES, RestreamState

S = RestreamState


@dataclass(frozen=True)
class NodeView:
    name: str
    state: NodeState
    lease: NodeLease | None


@dataclass(frozen=True)
class RestreamView:
    id: str
    state: RestreamState
    active: bool
    node: str | None
    generation: int
    needs: Requirements
    state_age_s: float  # seconds since its last state change


@dataclass(frozen=True)
class MarkNodeOffline:
    node: str
    reason: str


@dataclass(frozen=True)
class MarkNodeActive:
    node: str
    reason: str


@dataclass(frozen=True)
class Recover:
    """Its node is lost: RECOVERING, unplaced (a later placement bumps the generation)."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class FinishStop:
    """STOPPING, and its FFmpeg is certainly gone: IDLE."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class Assign:
    restream_id: str
    node: str


@dataclass(frozen=True)
class KeepWaiting:
    restream_id: str
    reason: str


@dataclass(frozen=True)
class Sync:
    """The full set `node` should run: restream id -> generation."""

    node: str
    desired: dict[str, int]


Action = MarkNodeOffline | MarkNodeActive | Recover | FinishStop | Assign | KeepWaiting | Sync


def plan(
    nodes: Sequence[NodeView],
    restreams: Sequence[RestreamView],
    *,
    policy: Policy = "spread",
    stop_confirm_s: float = 3.0,
) -> list[Action]:
    """Everything one round should do, in the order it should be applied."""
    actions, live_nodes = _node_actions(nodes)
    leases = {n.name: n.lease for n in nodes if n.name in live_nodes and n.lease is not None}
    placed: dict[str, tuple[str, int]] = {}  # restream id -> (node, generation) after the round
    to_place: list[RestreamView] = []
    for r in restreams:
        lease = leases.get(r.node) if r.node is not None else None
        if r.state in PLACED_STATES:
            if lease is not None:
                assert r.node is not None
                placed[r.id] = (r.node, r.generation)
                continue
            actions.append(Recover(r.id, f"node {r.node} lost"))
            if r.active:
                to_place.append(r)
        elif r.state is S.STOPPING:
            if lease is None:
                actions.append(FinishStop(r.id, f"node {r.node} lost while stopping"))
            elif r.id not in lease.running and r.state_age_s >= stop_confirm_s:
                actions.append(FinishStop(r.id, f"no FFmpeg left on {r.node}"))
        elif r.state in UNPLACED_WANTED_STATES and r.active:
            to_place.append(r)
    actions += _placements(nodes, live_nodes, to_place, placed, policy)
    for name in sorted(live_nodes):
        desired = {rid: gen for rid, (node, gen) in placed.items() if node == name}
        actions.append(Sync(name, desired))
    return actions


def _node_actions(nodes: Sequence[NodeView]) -> tuple[list[Action], set[str]]:
    """Nodes whose lease expired go offline; nodes whose lease is back return."""
    actions: list[Action] = []
    live_nodes: set[str] = set()
    for node in nodes:
        if node.lease is None:
            if node.state is not NodeState.OFFLINE:
                actions.append(MarkNodeOffline(node.name, "lease expired: no heartbeat"))
            continue
        live_nodes.add(node.name)
        if node.state is NodeState.OFFLINE:
            actions.append(MarkNodeActive(node.name, "lease renewed"))
    return actions, live_nodes


def _placements(
    nodes: Sequence[NodeView],
    live_nodes: set[str],
    to_place: list[RestreamView],
    placed: dict[str, tuple[str, int]],
    policy: Policy,
) -> list[Action]:
    """Place what waits, each placement adding to the load the next one sees."""
    load = Counter(node for node, _ in placed.values())
    candidates = [
        Candidate(n.name, n.lease.address, encoders_of(n.lease.capabilities), load[n.name])
        for n in nodes
        if n.lease is not None and n.name in live_nodes and n.state is not NodeState.DRAINING
    ]
    actions: list[Action] = []
    for r in to_place:
        result = place(r.needs, candidates, policy)
        if not isinstance(result, Placed):
            actions.append(KeepWaiting(r.id, result.reason))
            continue
        actions.append(Assign(r.id, result.node))
        placed[r.id] = (result.node, r.generation + 1)
        candidates = [
            Candidate(c.name, c.address, c.encoders, c.load + (c.name == result.node))
            for c in candidates
        ]
    return actions
