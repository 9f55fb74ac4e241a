"""The reconciler's plan: desired state + observed state -> actions. Pure (DESIGN §2, §4).

Level-triggered: the plan looks only at what is, never at what happened, so a lost message
or a crashed reconciler is healed by the next round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from common.definitions.restream import RestreamDefinition
from common.definitions.states import NodeState, Phase
from common.live import NodeLease
from common.nodes.capabilities import Requirements, requirements
from common.nodes.capacity import NO_RESERVATION, Reservation
from common.nodes.placement import (
    Candidate,
    Placed,
    Policy,
    Wanted,
    candidate_of,
    holding,
    plan_placements,
)

P = Phase


@dataclass(frozen=True)
class NodeView:
    name: str
    state: NodeState
    lease: NodeLease | None
    # Its worker stopped answering, though its lease has not lapsed yet: why (its connection
    # to Redis closed, its renewals stopped). Empty while it answers.
    silence: str = ""


class RestreamView(NamedTuple):  # a tuple: a round builds ten thousand of them
    id: str
    phase: Phase  # what the control plane arranged: the plan reads nothing a worker writes
    active: bool
    node: str | None
    generation: int
    phase_age_s: float  # seconds since its last change of phase
    reservation: Reservation = NO_RESERVATION
    definition: Mapping[str, Any] | None = None  # parsed only if it must be placed
    needs: Requirements | None = None  # given directly (tests), else read from `definition`
    source: str | None = None  # fed by this restream's relay: must run on its node

    def requirements(self) -> Requirements:
        if self.needs is not None:
            return self.needs
        assert self.definition is not None, f"restream {self.id} has no definition"
        return requirements(RestreamDefinition.model_validate(self.definition))


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
    """Its node is lost (its copy already fenced): RECOVERING, unplaced."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class Lose:
    """Its node stopped answering: RECOVERING, still on that node (its copy may be stopping
    there) until the node answers again or its lease lapses."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class Resume:
    """RECOVERING on a node that answers again: placed there again (its FFmpeg kept running,
    or the node starts it again)."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class Evacuate:
    """Its node is draining: stop it there (STOPPING, still wanted); placed again once gone."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class FinishStop:
    """STOPPING, and its FFmpeg is certainly gone: IDLE, or PENDING if still wanted."""

    restream_id: str
    reason: str


@dataclass(frozen=True)
class Assign:
    restream_id: str
    node: str
    u30_device: int | None = None
    needs: Requirements | None = field(default=None, compare=False)  # what it reserves


@dataclass(frozen=True)
class KeepWaiting:
    restream_id: str
    reason: str


@dataclass(frozen=True)
class Sync:
    """The full set `node` should run: restream id -> generation."""

    node: str
    desired: dict[str, int]


Action = (
    MarkNodeOffline
    | MarkNodeActive
    | Recover
    | Lose
    | Resume
    | Evacuate
    | FinishStop
    | Assign
    | KeepWaiting
    | Sync
)


def plan(
    nodes: Sequence[NodeView],
    restreams: Sequence[RestreamView],
    *,
    policy: Policy = "spread",
    stop_confirm_s: float = 3.0,
    judge_nodes: bool = True,
    servers: Sequence[tuple[str, str, str]] = (),
) -> list[Action]:
    """Everything one round should do, in the order it should be applied.

    `judge_nodes`: whether a missing lease means a lost node. Not while Redis has just lost
    its data (every lease with it): what runs on a node without a lease is then left alone.
    `servers`: where the media server modules run and the port each holds there
    (`server_source(id)`, node, "9000/UDP"): restreams reading one run beside it.
    """
    actions, leases, held = _node_actions(nodes, judge_nodes)
    draining = {n.name for n in nodes if n.state is NodeState.DRAINING}
    silence = {n.name: n.silence for n in nodes if n.silence}
    round_ = _Round(leases, held, silence, draining, stop_confirm_s, judge_nodes, actions)
    for restream in restreams:
        round_.look_at(restream)
    served = {source: node for source, node, _ in servers}
    candidates = [
        _with_servers(candidate_of(name, lease, *holding(round_.holding[name])), servers)
        for name, lease in sorted(leases.items())
        if name not in draining
    ]
    actions += _placements(round_, candidates, policy, served)
    actions += _follow(restreams, round_, served)
    desired: dict[str, dict[str, int]] = {name: {} for name in leases}
    for rid, (node, generation) in round_.placed.items():
        desired[node][rid] = generation
    for name, lease in sorted(leases.items()):
        if desired[name] != lease.running:  # nothing to heal where it runs what it should
            actions.append(Sync(name, desired[name]))
    return actions


@dataclass
class _Round:
    """What one round learns restream by restream."""

    leases: dict[str, NodeLease]  # of the nodes that answer: where restreams may run
    held: dict[str, NodeLease]  # of every node with a lease, answering or not
    silence: dict[str, str]  # why a node with a lease does not answer
    draining: set[str]
    stop_confirm_s: float
    judge_nodes: bool
    actions: list[Action]
    placed: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (node, generation)
    to_place: list[RestreamView] = field(default_factory=list)
    holding: dict[str, dict[str, Reservation]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.holding = {name: {} for name in self.leases}

    def look_at(self, r: RestreamView) -> None:
        if r.phase is P.PLACED:
            self._placed(r)
        elif r.phase is P.RECOVERING and r.node is not None:
            self._recovering_there(r)
        elif r.phase is P.STOPPING:
            self._stopping(r)
        elif r.phase in (P.PENDING, P.RECOVERING) and r.active:
            self.to_place.append(r)

    def _lost(self, r: RestreamView) -> bool:
        """Its node is gone (no lease: its copy fenced itself before it lapsed): Recover it.
        True when it was; its node is otherwise left alone."""
        if r.node in self.held or not self.judge_nodes:
            return False
        self.actions.append(Recover(r.id, f"node {r.node} lost: its lease lapsed"))
        if r.active:
            self.to_place.append(r)
        return True

    def _placed(self, r: RestreamView) -> None:
        if self._lost(r):
            return
        assert r.node is not None
        if r.node not in self.leases:
            if r.node in self.held:  # still leased, but its worker does not answer
                why = self.silence.get(r.node, "")
                self.actions.append(Lose(r.id, f"node {r.node} stopped answering ({why})"))
            return
        self.holding[r.node][r.id] = r.reservation
        if r.node in self.draining:
            self.actions.append(Evacuate(r.id, f"node {r.node} is draining: moving"))
        else:
            self.placed[r.id] = (r.node, r.generation)

    def _recovering_there(self, r: RestreamView) -> None:
        """Its node stopped answering, or fenced it: back to work there once the node answers
        (it starts it again, unless its FFmpeg kept running), elsewhere once it is lost."""
        if self._lost(r):
            return
        assert r.node is not None
        lease = self.leases.get(r.node)
        if lease is None:
            return  # not answering yet: wait
        self.holding[r.node][r.id] = r.reservation
        if r.node in self.draining or not r.active:
            self.actions.append(Evacuate(r.id, f"node {r.node} answers again: stopping it there"))
        else:
            kept = lease.running.get(r.id) == r.generation
            how = "FFmpeg kept running" if kept else "it starts FFmpeg there again"
            self.actions.append(Resume(r.id, f"node {r.node} answers again; {how}"))
            self.placed[r.id] = (r.node, r.generation)

    def _stopping(self, r: RestreamView) -> None:
        lease = self.held.get(r.node) if r.node is not None else None
        if lease is None:
            if not self.judge_nodes:
                return
            self.actions.append(FinishStop(r.id, f"node {r.node} lost while stopping"))
        elif r.id not in lease.running and r.phase_age_s >= self.stop_confirm_s:
            self.actions.append(FinishStop(r.id, f"no FFmpeg left on {r.node}"))
        else:  # still stopping there: it holds its resources until it is gone
            assert r.node is not None
            if r.node in self.holding:
                self.holding[r.node][r.id] = r.reservation
            return
        if r.active:
            self.to_place.append(r)


def _node_actions(
    nodes: Sequence[NodeView], judge: bool
) -> tuple[list[Action], dict[str, NodeLease], dict[str, NodeLease]]:
    """Active nodes whose lease expired, or whose worker stopped answering, go offline (a
    draining one stays draining); nodes that answer again return. Also: the leases of the
    nodes that answer, and of every node that has one."""
    actions: list[Action] = []
    leases: dict[str, NodeLease] = {}
    held: dict[str, NodeLease] = {}
    for node in nodes:
        if node.lease is None:
            if judge and node.state is NodeState.ACTIVE:
                actions.append(MarkNodeOffline(node.name, "lease expired: no heartbeat"))
            continue
        held[node.name] = node.lease
        if node.silence:
            if node.state is NodeState.ACTIVE:
                actions.append(MarkNodeOffline(node.name, f"stopped answering: {node.silence}"))
            continue
        leases[node.name] = node.lease
        if node.state is NodeState.OFFLINE:
            actions.append(MarkNodeActive(node.name, "lease renewed"))
    return actions, leases, held


def _with_servers(candidate: Candidate, servers: Sequence[tuple[str, str, str]]) -> Candidate:
    """A node as placement sees it, with the ports its servers hold."""
    held = {
        port: source.replace(":", " ") for source, node, port in servers if node == candidate.name
    }
    return replace(candidate, ports={**candidate.ports, **held}) if held else candidate


def _placements(
    round_: _Round, candidates: list[Candidate], policy: Policy, served: Mapping[str, str]
) -> list[Action]:
    """Place what waits (`plan_placements`, the API's planner too)."""
    actions: list[Action] = []
    generation = {r.id: r.generation for r in round_.to_place}
    wanted = [Wanted(r.id, r.requirements(), r.source) for r in round_.to_place]
    running = {**served, **{rid: node for rid, (node, _) in round_.placed.items()}}
    for decision in plan_placements(wanted, candidates, running, policy):
        rid, result = decision.restream_id, decision.result
        if isinstance(result, Placed):
            actions.append(Assign(rid, result.node, result.u30_device, decision.needs))
            round_.placed[rid] = (result.node, generation[rid] + 1)
        else:
            actions.append(KeepWaiting(rid, result.reason))
    return actions


def _follow(
    restreams: Sequence[RestreamView], round_: _Round, served: Mapping[str, str]
) -> list[Action]:
    """Restreams fed by a relay, or reading a server, go where their source is: stopped
    (then placed beside it) when their source moved."""
    actions: list[Action] = []
    for r in restreams:
        if r.source is None:
            continue
        source = round_.placed.get(r.source)
        if source is None and r.source in served:
            source = (served[r.source], 0)
        here = round_.placed.get(r.id)
        if here is None or source is None or source[0] == here[0]:
            continue
        # Stopped there first; placed beside its source once its FFmpeg has exited.
        actions.append(Evacuate(r.id, f"its source moved to {source[0]}"))
        del round_.placed[r.id]
    return actions
