"""The reconciler's plan: desired state + observed state -> actions. Pure (DESIGN §2, §4).

Level-triggered: the plan looks only at what is, never at what happened, so a lost message
or a crashed reconciler is healed by the next round.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from common.live import NodeLease
from common.nodes.capabilities import Requirements, requirements
from common.nodes.capacity import NO_RESERVATION, Reservation
from common.nodes.placement import Candidate, Placed, Policy, candidate_of, place
from common.nodes.states import NodeState
from common.restreams.schemas import RestreamDefinition
from common.restreams.states import PLACED_STATES, UNPLACED_WANTED_STATES, RestreamState

S = RestreamState


@dataclass(frozen=True)
class NodeView:
    name: str
    state: NodeState
    lease: NodeLease | None


class RestreamView(NamedTuple):  # a tuple: a round builds ten thousand of them
    id: str
    state: RestreamState
    active: bool
    node: str | None
    generation: int
    state_age_s: float  # seconds since its last state change
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
    MarkNodeOffline | MarkNodeActive | Recover | Evacuate | FinishStop | Assign | KeepWaiting | Sync
)


def plan(
    nodes: Sequence[NodeView],
    restreams: Sequence[RestreamView],
    *,
    policy: Policy = "spread",
    stop_confirm_s: float = 3.0,
) -> list[Action]:
    """Everything one round should do, in the order it should be applied."""
    actions, leases = _node_actions(nodes)
    draining = {n.name for n in nodes if n.state is NodeState.DRAINING}
    round_ = _Round(leases, draining, stop_confirm_s, actions)
    for restream in restreams:
        round_.look_at(restream)
    candidates = [
        candidate_of(name, lease, round_.holding[name])
        for name, lease in sorted(leases.items())
        if name not in draining
    ]
    sources_first = sorted(round_.to_place, key=lambda r: r.source is not None)
    actions += _placements(sources_first, candidates, round_.placed, policy)
    actions += _follow(restreams, round_, candidates, policy)
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

    leases: dict[str, NodeLease]
    draining: set[str]
    stop_confirm_s: float
    actions: list[Action]
    placed: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (node, generation)
    to_place: list[RestreamView] = field(default_factory=list)
    holding: dict[str, dict[str, Reservation]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.holding = {name: {} for name in self.leases}

    def look_at(self, r: RestreamView) -> None:
        lease = self.leases.get(r.node) if r.node is not None else None
        if r.state in PLACED_STATES:
            self._placed(r, lease)
        elif r.state is S.STOPPING:
            self._stopping(r, lease)
        elif r.state in UNPLACED_WANTED_STATES and r.active:
            self.to_place.append(r)

    def _placed(self, r: RestreamView, lease: NodeLease | None) -> None:
        if lease is None:  # its node is gone, and fenced itself before its lease expired
            self.actions.append(Recover(r.id, f"node {r.node} lost"))
            if r.active:
                self.to_place.append(r)
            return
        assert r.node is not None
        self.holding[r.node][r.id] = r.reservation
        if r.node in self.draining:
            self.actions.append(Evacuate(r.id, f"node {r.node} is draining: moving"))
        else:
            self.placed[r.id] = (r.node, r.generation)

    def _stopping(self, r: RestreamView, lease: NodeLease | None) -> None:
        if lease is None:
            self.actions.append(FinishStop(r.id, f"node {r.node} lost while stopping"))
        elif r.id not in lease.running and r.state_age_s >= self.stop_confirm_s:
            self.actions.append(FinishStop(r.id, f"no FFmpeg left on {r.node}"))
        else:  # still stopping there: it holds its resources until it is gone
            assert r.node is not None
            self.holding[r.node][r.id] = r.reservation
            return
        if r.active:
            self.to_place.append(r)


def _node_actions(nodes: Sequence[NodeView]) -> tuple[list[Action], dict[str, NodeLease]]:
    """Active nodes whose lease expired go offline (a draining one stays draining); nodes
    whose lease is back return. Also: the leases of the live nodes."""
    actions: list[Action] = []
    leases: dict[str, NodeLease] = {}
    for node in nodes:
        if node.lease is None:
            if node.state is NodeState.ACTIVE:
                actions.append(MarkNodeOffline(node.name, "lease expired: no heartbeat"))
            continue
        leases[node.name] = node.lease
        if node.state is NodeState.OFFLINE:
            actions.append(MarkNodeActive(node.name, "lease renewed"))
    return actions, leases


def _placements(
    to_place: Sequence[RestreamView],
    candidates: list[Candidate],
    placed: dict[str, tuple[str, int]],
    policy: Policy,
) -> list[Action]:
    """Place what waits, each placement adding to the holdings the next one sees."""
    actions: list[Action] = []
    index = {c.name: i for i, c in enumerate(candidates)}
    for r in to_place:
        if r.source is not None:
            continue  # placed by _follow, once its source's place is known
        needs = r.requirements()
        result = place(needs, candidates, policy)
        if not isinstance(result, Placed):
            actions.append(KeepWaiting(r.id, result.reason))
            continue
        actions.append(Assign(r.id, result.node, result.u30_device, needs))
        placed[r.id] = (result.node, r.generation + 1)
        chosen = index[result.node]
        candidates[chosen] = candidates[chosen].taking(needs, result.u30_device, r.id)
    return actions


def _follow(
    restreams: Sequence[RestreamView],
    round_: _Round,
    candidates: list[Candidate],
    policy: Policy,
) -> list[Action]:
    """Restreams fed by a relay go where their source is: placed on its node when waiting,
    stopped (then placed there) when their source moved. With no source running they wait
    (or keep listening where they are)."""
    actions: list[Action] = []
    waiting = {r.id for r in round_.to_place}
    for r in restreams:
        if r.source is None:
            continue
        source = round_.placed.get(r.source)
        here = round_.placed.get(r.id)
        if here is not None:
            if source is None or source[0] == here[0]:
                continue
            # Stopped there first; placed beside its source once its FFmpeg has exited.
            actions.append(Evacuate(r.id, f"its source moved to {source[0]}"))
            del round_.placed[r.id]
            continue
        if r.id not in waiting:
            continue
        if source is None:
            actions.append(KeepWaiting(r.id, f"its source {r.source} is not running yet"))
            continue
        needs = replace(r.requirements(), colocate=source[0])
        unbound = r._replace(needs=needs, source=None)
        actions += _placements([unbound], candidates, round_.placed, policy)
    return actions
