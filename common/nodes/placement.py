"""Which node runs a restream: filter by capability, free capacity and free port, then pick by
policy. Pure: the callers (API, reconciler) read the state and reserve under a lock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from common.definitions.node import LOCAL_RTMP, LOCAL_RTSP
from common.live import NodeLease
from common.nodes.capabilities import Requirements, capacity_of
from common.nodes.capacity import (
    ENGINE_UNITS,
    Capacity,
    Cost,
    Reservation,
    U30Load,
    Usage,
    usage_of,
)

Policy = Literal["spread", "pack"]


@dataclass(frozen=True)
class Candidate:
    """A live, active node as placement sees it."""

    name: str
    address: str
    encoders: frozenset[str]
    capacity: Capacity
    usage: Usage = field(default_factory=Usage)
    ports: Mapping[str, str] = field(default_factory=dict)  # "2035/UDP" -> holding restream
    features: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)

    def taking(self, needs: Requirements, device: int | None, holder: str) -> Candidate:
        """This node after it also takes a restream with `needs`."""
        ports = dict(self.ports)
        if needs.listen_port is not None:
            ports[needs.listen_port] = holder
        return replace(self, usage=self.usage.plus(needs.cost, device), ports=ports)


def candidate_of(name: str, lease: NodeLease, usage: Usage, ports: Mapping[str, str]) -> Candidate:
    """Placement's view of a live node: what it offers (its lease), what its restreams already
    hold there (`usage`) and which listen ports they take (port -> restream)."""
    return Candidate(
        name=name,
        address=lease.address,
        encoders=lease.capabilities.encoders,
        capacity=capacity_of(lease.capabilities),
        usage=usage,
        ports=dict(ports),
        features=lease.capabilities.features,
        labels=dict(lease.capabilities.labels),
    )


def holding(reservations: Mapping[str, Reservation]) -> tuple[Usage, dict[str, str]]:
    """What the restreams holding `reservations` (restream id -> reservation) take on their
    node: their usage, and their listen ports."""
    ports = {r.listen_port: rid for rid, r in reservations.items() if r.listen_port}
    return usage_of(reservations.values()), ports


@dataclass(frozen=True)
class Placed:
    node: str
    address: str
    u30_device: int | None = None


@dataclass(frozen=True)
class Unplaced:
    reason: str  # in words an operator can act on
    # What is missing: "node", "selector", "capability", "port", "capacity" (or "source").
    kind: str = "capacity"


def place(
    needs: Requirements, candidates: Sequence[Candidate], policy: Policy = "spread"
) -> Placed | Unplaced:
    """Pick a node (and a U30 device) for a restream, or say why none fits."""
    eligible = _eligible(needs, candidates)
    if isinstance(eligible, Unplaced):
        return eligible
    candidates = eligible
    capable = [
        c for c in candidates if needs.encoders <= c.encoders and needs.features <= c.features
    ]
    if not capable:
        return Unplaced(_incapable(needs, candidates), "capability")
    port = needs.listen_port
    open_port = [c for c in capable if port is None or port not in c.ports]
    if not open_port:
        holders = ", ".join(f"{_holder(c.ports[port])} on {c.name}" for c in capable if port)
        return Unplaced(
            f"port {port} is taken on every node that could run this ({holders})", "port"
        )
    fitting: list[tuple[float, str, Candidate, int | None]] = []
    for candidate in open_port:
        device = _device_for(needs.cost, candidate, policy)
        if _cpu_free(candidate) < needs.cost.cpu_millicores:
            continue
        if needs.cost.u30 is not None and device is None:
            continue
        after = candidate.usage.plus(needs.cost, device)
        fitting.append(
            (_utilisation(after, candidate.capacity, needs.cost), candidate.name, candidate, device)
        )
    if not fitting:
        return Unplaced(_shortfall(needs.cost, open_port))
    # Spread: the least utilised after placement; pack: the most. Ties go by name.
    sign = 1 if policy == "spread" else -1
    _, _, best, device = min(fitting, key=lambda f: (sign * f[0], f[1]))
    return Placed(node=best.name, address=best.address, u30_device=device)


@dataclass(frozen=True)
class Wanted:
    """A restream that wants a node: what it needs, and the restream whose relay feeds it (it
    must run beside that one), if any."""

    restream_id: str
    needs: Requirements
    source: str | None = None


@dataclass(frozen=True)
class Decision:
    """Where a wanted restream goes (`Placed`, holding `needs` there), or why nowhere."""

    restream_id: str
    needs: Requirements
    result: Placed | Unplaced


def plan_placements(
    wanted: Sequence[Wanted],
    candidates: Sequence[Candidate],
    running: Mapping[str, str],
    policy: Policy = "spread",
) -> list[Decision]:
    """The one placement planner, for an API start and for a reconcile round alike: where each
    of `wanted` goes, in order, each placement adding to the holdings the next one sees.

    Those fed by no relay go first; one fed by a relay goes beside its source, once that runs
    somewhere (`running`: restream id -> node, joined by what this plan places), else waits.
    """
    decisions: list[Decision] = []
    nodes = list(candidates)
    index = {c.name: i for i, c in enumerate(nodes)}
    where = dict(running)
    for want in sorted(wanted, key=lambda w: w.source is not None):
        needs = want.needs
        if want.source is not None:
            beside = where.get(want.source)
            if beside is None:
                what = (
                    f"server {want.source.removeprefix('server:')} is not running on any node"
                    if want.source.startswith("server:")
                    else f"source {want.source} is not running"
                )
                why = Unplaced(f"its {what} yet", "source")
                decisions.append(Decision(want.restream_id, needs, why))
                continue
            needs = replace(needs, colocate=beside)
        result = place(needs, nodes, policy)
        if isinstance(result, Placed):
            where[want.restream_id] = result.node
            chosen = index[result.node]
            nodes[chosen] = nodes[chosen].taking(needs, result.u30_device, want.restream_id)
        decisions.append(Decision(want.restream_id, needs, result))
    return decisions


def _eligible(needs: Requirements, candidates: Sequence[Candidate]) -> list[Candidate] | Unplaced:
    """The live nodes it may run on at all: its source's, those its selector selects."""
    if not candidates:
        return Unplaced("no live worker node: start one with `streamfleet worker`", "node")
    eligible = list(candidates)
    if needs.colocate is not None:
        eligible = [c for c in eligible if c.name == needs.colocate]
        if not eligible:
            return Unplaced(
                f"it must run on {needs.colocate}, where its source runs, which takes nothing new",
                "node",
            )
    if needs.node_selector:
        eligible = [c for c in eligible if needs.selects(c.labels)]
        if not eligible:
            wanted = "; ".join(
                f"{key} in ({', '.join(sorted(values))})" for key, values in needs.node_selector
            )
            return Unplaced(f"no live node matches its node selector: {wanted}", "selector")
    return eligible


def _holder(holder: str) -> str:
    """Who holds a port: "restream <id>", or as its holder says ("server <id>")."""
    return holder if " " in holder else f"restream {holder}"


def _incapable(needs: Requirements, candidates: Sequence[Candidate]) -> str:
    missing = sorted(needs.encoders - set().union(*(c.encoders for c in candidates)))
    if missing:
        return f"no live node's FFmpeg has the encoder {', '.join(missing)}"
    absent = sorted(needs.features - set().union(*(c.features for c in candidates)))
    if LOCAL_RTMP in absent:
        return "no live node has a local RTMP server (nginx-rtmp: STREAMFLEET_RTMP_SERVER_PORT)"
    servers = [a for a in absent if a.endswith("-server")]
    if servers:
        kind = servers[0].removesuffix("-server")
        engine = "libsrt (libsrt1.5-openssl)" if kind == "srt" else "nginx with the RTMP module"
        return f"no live node runs {kind.upper()} servers: each needs {engine}; " + "; ".join(
            f"{c.name} has {_offered(c)}" for c in candidates
        )
    if LOCAL_RTSP in absent:
        return (
            "no live node has a local RTSP server (Node.js and `make rtsp`: "
            "STREAMFLEET_RTSP_SERVER_PORT; or STREAMFLEET_LOCAL_RTSP_URL)"
        )
    if absent:
        names = ", ".join(a.removeprefix("protocol:") for a in absent)
        return f"no live node's FFmpeg supports the protocol {names}"
    return "no single live node has all of " + ", ".join(
        sorted(needs.encoders | {f.removeprefix("protocol:") for f in needs.features})
    )


def _offered(candidate: Candidate) -> str:
    kinds = sorted(
        f.removesuffix("-server").upper() for f in candidate.features if f.endswith("-server")
    )
    return "servers " + ", ".join(kinds) if kinds else "no server engine"


def _cpu_free(candidate: Candidate) -> int:
    return candidate.capacity.cpu_millicores - candidate.usage.cpu_millicores


def _device_free(candidate: Candidate, device: int) -> U30Load:
    return candidate.usage.u30.get(device, U30Load()).free()


def _device_for(cost: Cost, candidate: Candidate, policy: Policy) -> int | None:
    """The U30 device to pin the job to: the emptiest that fits (spread) or the fullest (pack)."""
    if cost.u30 is None:
        return None
    fitting = [
        (_device_free(candidate, d).encoder, d)
        for d in candidate.capacity.u30_devices
        if cost.u30.fits_in(_device_free(candidate, d))
    ]
    if not fitting:
        return None
    sign = -1 if policy == "spread" else 1
    return min(fitting, key=lambda f: (sign * f[0], f[1]))[1]


def _utilisation(usage: Usage, capacity: Capacity, cost: Cost) -> float:
    """How full a node would be, in the resource the restream uses most."""
    if cost.u30 is not None and capacity.u30_devices:
        total = ENGINE_UNITS * len(capacity.u30_devices)
        return sum(load.encoder for load in usage.u30.values()) / total
    return usage.cpu_millicores / max(1, capacity.cpu_millicores)


def _shortfall(cost: Cost, candidates: Sequence[Candidate]) -> str:
    """Why no node fits, naming the scarce resource, what is needed and the best on offer."""
    if cost.u30 is not None:
        with_devices = [c for c in candidates if c.capacity.u30_devices]
        if not with_devices:
            return "no live node has a U30 device: this restream uses mpsoc_vcu_* on the card"
        engine, need = max(cost.u30.as_dict().items(), key=lambda item: item[1])
        best_free, best_node = max(
            (getattr(_device_free(c, d), engine), c.name)
            for c in with_devices
            for d in c.capacity.u30_devices
        )
        if need > best_free:
            return (
                f"no node has a free U30 device: need {need} {engine} units, "
                f"best node has {best_free} ({best_node})"
            )
    free, node = max((_cpu_free(c), c.name) for c in candidates)
    return (
        f"not enough free CPU on any node: need {cost.cpu_millicores} millicores, "
        f"the most free is {free} on {node}"
    )
