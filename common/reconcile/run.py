"""One reconcile round: read both states, plan, apply (DESIGN §2, §4).

Run by `streamfleet beat` (`common.cli.beat`) every `reconcile_interval_s`, and the moment the
lease of a node that stopped answering lapses, under a PostgreSQL advisory lock so that at most
one round runs at a time across the farm. It also
holds the placement lock (see `common.lifecycle.placement_lock`) for the round, so its
placements and the API's never count the same free capacity twice.

The plan is made from a snapshot read without row locks. Each change then locks its row with
SKIP LOCKED (never waiting on a request that holds it: no deadlock with the API, which locks a
restream and then waits for the placement lock) and is skipped if the row moved meanwhile; the
next round sees the new state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common import live
from common.celery_app import sync_message
from common.config import Settings
from common.db import Database
from common.definitions.server import server_source
from common.definitions.states import NodeState, Phase
from common.lifecycle import commands, schedules, servers
from common.lifecycle import nodes as node_service
from common.lifecycle.placement_lock import lock_placement
from common.lifecycle.service import definition_of
from common.models import Restream
from common.nodes import repository as node_repository
from common.nodes.capabilities import requirements
from common.nodes.capacity import Reservation, U30Load
from common.outbox import enqueue
from common.reconcile import rest
from common.reconcile.plan import (
    Action,
    Assign,
    Evacuate,
    FinishStop,
    KeepWaiting,
    Lose,
    MarkNodeActive,
    MarkNodeOffline,
    NodeView,
    Recover,
    RestreamView,
    Resume,
    Sync,
    plan,
)
from common.servers import repository as server_repository

log = logging.getLogger(__name__)
# Any 64-bit constant works; this one spells "sfreconc" in ASCII.
RECONCILE_LOCK_ID = 0x7366_7265_636F_6E63
_ROUND_LOCK = select(func.pg_try_advisory_xact_lock(RECONCILE_LOCK_ID))

Snapshot = dict[str, tuple[Phase, int, str | None]]


@dataclass
class RoundSummary:
    ran: bool
    duration_ms: float = 0.0
    actions: dict[str, int] = field(default_factory=dict)
    # Seconds until the lease of a node that stopped answering lapses (the soonest): the
    # moment its restreams may start elsewhere, for the next round to come right then.
    next_lapse_s: float | None = None
    # Seconds until a restream's schedule starts or stops it (the soonest), likewise.
    next_due_s: float | None = None
    # Not run: the farm was at rest and nothing changed since (`common.reconcile.rest`).
    rested: bool = False


def reconcile(
    db: Database, client: redis.Redis, settings: Settings, at_rest: rest.Rest | None = None
) -> RoundSummary:
    """One round. `at_rest`: what the last rounds found, kept between rounds (the beat's):
    a round that would only find the same again is not run."""
    started = time.perf_counter()
    if at_rest is not None and _unchanged(at_rest, client, settings):
        return RoundSummary(ran=True, duration_ms=(time.perf_counter() - started) * 1000,
                            rested=True)  # fmt: skip
    if at_rest is not None:
        at_rest.begin()
    with db.transaction() as session:
        if not session.execute(_ROUND_LOCK).scalar_one():
            return RoundSummary(ran=False)
        lock_placement(session)
        nodes = [(n.name, n.state) for n in node_repository.all_nodes(session)]
        farm = live.read_farm(client, [name for name, _ in nodes])
        # Redis that has just lost its data (a restart without persistence, a flush) lost
        # every lease with it: a missing one proves nothing until the workers had a lease's
        # lifetime to renew. Until then no node is judged; placing and syncing go on.
        remembered_s = settings.lease_key_ttl_s + settings.lease_renew_interval_s
        judge_nodes = farm.memory_age_s >= remembered_s
        node_views, next_lapse_s = _node_views(farm, nodes, settings)
        settled = {
            n.name for n in node_views if n.lease and not n.silence and n.state is NodeState.ACTIVE
        }
        _servers(session, client, node_views, judge_nodes)
        scheduled, next_due_s = schedules.carry_out(session)  # placed by this round's plan
        views, restreams = _restream_views(session, settled)
        actions = plan(
            node_views,
            views,
            policy=settings.placement_policy,
            stop_confirm_s=2 * settings.lease_renew_interval_s + 1,
            judge_nodes=judge_nodes,
            servers=server_repository.holdings(session),
        )
        counts = _apply_all(session, actions, restreams)
        counts.update({kind: n for kind, n in scheduled.items() if n})
    if at_rest is not None:
        quiet = not actions and not any(scheduled.values()) and judge_nodes
        quiet = quiet and not any(n.silence for n in node_views)
        quiet = quiet and all(phase is not Phase.STOPPING for phase, _, _ in restreams.values())
        at_rest.record(node_views, at_rest=quiet, next_due_s=next_due_s)
    summary = RoundSummary(
        ran=True,
        duration_ms=(time.perf_counter() - started) * 1000,
        actions=counts,
        next_lapse_s=next_lapse_s,
        next_due_s=next_due_s,
    )
    if set(counts) - {"Sync"}:
        log.info("reconciled in %.0f ms: %s", summary.duration_ms, counts)
    return summary


def _servers(session: Session, client: redis.Redis, nodes: Sequence[NodeView], judge: bool) -> None:
    """Servers first: restreams reading one are placed beside it in this same round. The
    nodes' holdings are read only when a server must be placed (rarely)."""
    held = {n.name for n in nodes if n.lease is not None}
    if not server_repository.unsettled(session, held):
        return
    servers.replace_lost(session, node_service.candidates(session, client), held, judge)


def _unchanged(at_rest: rest.Rest, client: redis.Redis, settings: Settings) -> bool:
    farm = at_rest.unchanged(client)
    return farm is not None and at_rest.same_nodes(
        _node_views(farm, at_rest.node_rows, settings)[0]
    )


def _node_views(
    farm: live.FarmReading, nodes: Sequence[tuple[str, NodeState]], settings: Settings
) -> tuple[list[NodeView], float | None]:
    """Each node with its lease, and why its worker does not answer, if it does not: its
    connections to Redis are gone (the process died: Redis saw its sockets close), or it has
    not renewed for two intervals. Its lease may not have lapsed yet: only then is it lost.
    And the seconds until the soonest such lease lapses (None: every node answers)."""
    leases, connected, remaining = farm.leases, farm.connected, farm.remaining_s
    # Two renewals missed, and never under 2.5 s: a Redis outage of a couple of seconds,
    # which stops no FFmpeg, reads as no silence either.
    overdue_s = max(2 * settings.lease_renew_interval_s + 0.5, 2.5)
    views = []
    for name, state in nodes:
        lease = leases.get(name)
        silence = ""
        if lease is not None:
            age_s = settings.lease_key_ttl_s - remaining.get(name, settings.lease_key_ttl_s)
            if connected is not None and lease.holder and lease.holder not in connected:
                silence = f"its worker's connection to Redis closed; last renewal {age_s:.1f} s ago"
            elif age_s > overdue_s:
                silence = f"no lease renewal for {age_s:.1f} s"
        views.append(NodeView(name, state, lease, silence))
    lapses = [remaining[v.name] for v in views if v.silence and v.name in remaining]
    return views, min(lapses, default=None)


# Built once: a round each second would otherwise spend a good part of itself building it.
_VIEWS = (
    select(
        Restream.id,
        Restream.phase,
        Restream.active,
        Restream.node_name,
        Restream.generation,
        # Seconds in the phase, computed by PostgreSQL (as of this transaction's start).
        func.extract("epoch", func.now() - Restream.phase_changed_at),
        Restream.reserved_millicores,
        Restream.u30_device,
        Restream.u30_load,
        Restream.listen_port,
        Restream.source_id,
        Restream.server_id,
    )
    .where((Restream.active.is_(True)) | (Restream.phase != Phase.IDLE))
    .order_by(Restream.created_at, Restream.id)
)


def _restream_views(
    session: Session, settled_nodes: set[str]
) -> tuple[list[RestreamView], Snapshot]:
    """Every restream the reconciler must look at (wanted, or not yet at rest), as plain data.

    Plain columns, no ORM objects; definitions are read (and later parsed) only for those the
    plan might have to place: all but the ones placed on a live node that is not draining.
    """
    # Core, and plain tuples: ORM rows would cost more than the whole plan.
    plain = [
        tuple(row)
        for row in session.connection()
        .execute(_VIEWS)
        .all()  # one fetch of every row: far cheaper than a fetch per row
    ]
    # Restreams fed by a relay may have to follow their source: keep their definitions too.
    suspects = [
        r[0]
        for r in plain
        if r[1] is not Phase.PLACED
        or r[3] not in settled_nodes
        or r[10] is not None
        or r[11] is not None
    ]
    definitions: dict[str, dict[str, Any]] = (
        dict(
            session.execute(
                select(Restream.id, Restream.definition).where(Restream.id.in_(suspects))
            ).all()
        )
        if suspects
        else {}  # every one placed on a settled node: no definition to read
    )
    views, snapshot = [], {}
    for rid, phase, active, node, generation, age, cpu, device, load, port, fed, server in plain:
        source = fed or (server_source(server) if server else None)
        reservation = Reservation(cpu, device, U30Load.from_dict(load) if load else None, port)
        age_s = float(age)
        definition = definitions.get(rid)
        views.append(
            RestreamView(
                rid, phase, active, node, generation, age_s, reservation, definition, None, source
            )
        )
        snapshot[rid] = (phase, generation, node)
    return views, snapshot


def _apply_all(session: Session, actions: list[Action], snapshot: Snapshot) -> dict[str, int]:
    """Apply the plan. The restream rows it touches are locked in one statement, skipping rows
    a request holds; an action whose row moved since the snapshot is skipped."""
    ids = [
        a.restream_id for a in actions if not isinstance(a, Sync | MarkNodeOffline | MarkNodeActive)
    ]
    locked = (
        {
            r.id: r
            for r in session.execute(
                select(Restream).where(Restream.id.in_(ids)).with_for_update(skip_locked=True)
            ).scalars()
        }
        if ids
        else {}  # a round at rest: nothing to lock
    )
    counts: dict[str, int] = {}
    for action in actions:
        if _apply(session, action, snapshot, locked):
            name = type(action).__name__
            counts[name] = counts.get(name, 0) + 1
    return counts


def _apply(
    session: Session, action: Action, snapshot: Snapshot, locked: dict[str, Restream]
) -> bool:
    """Apply one action; False when it no longer applies (its row moved, or is locked)."""
    if isinstance(action, Sync):
        enqueue(session, sync_message(action.node, action.desired))
        return True
    if isinstance(action, MarkNodeOffline | MarkNodeActive):
        node = node_repository.get(session, action.node, for_update=True)
        seen, target = (
            (NodeState.ACTIVE, NodeState.OFFLINE)
            if isinstance(action, MarkNodeOffline)
            else (NodeState.OFFLINE, NodeState.ACTIVE)
        )
        if node is None or node.state is not seen:  # it changed since the plan read it
            return False
        node_service.transition(session, node, target, action.reason)
        return True
    restream = locked.get(action.restream_id)
    if restream is None or snapshot.get(restream.id) != (
        restream.phase,
        restream.generation,
        restream.node_name,
    ):
        return False
    _apply_to_restream(session, action, restream)
    snapshot[restream.id] = (restream.phase, restream.generation, restream.node_name)
    return True


def _apply_to_restream(session: Session, action: Action, restream: Restream) -> None:
    if isinstance(action, Recover):
        commands.mark_lost(session, restream, action.reason)
    elif isinstance(action, Lose):
        commands.mark_silent(session, restream, action.reason)
    elif isinstance(action, Resume):
        commands.resume(session, restream, action.reason)
    elif isinstance(action, Evacuate):
        commands.move(session, restream, action.reason)
    elif isinstance(action, FinishStop):
        commands.finish_stop(session, restream, action.reason)
    elif isinstance(action, Assign):
        needs = action.needs or requirements(definition_of(restream))
        commands.assign(session, restream, action.node, needs, action.u30_device)
    elif isinstance(action, KeepWaiting):
        commands.keep_waiting(session, restream, action.reason)
