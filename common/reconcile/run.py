"""One reconcile round: read both states, plan, apply (DESIGN §2, §4).

Runs as the Celery task `farm.reconcile` on any worker, every `reconcile_interval_s`, under a
PostgreSQL advisory lock so that at most one round runs at a time across the farm. The plan
is made from a snapshot read without locks; each change re-checks its row under a row lock
and is skipped if the row moved meanwhile (the next round sees the new state).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from common import live
from common.celery_app import sync_message
from common.config import Settings
from common.db import Database
from common.models import Restream
from common.nodes import repository as node_repository
from common.nodes import service as node_service
from common.nodes.capabilities import requirements
from common.nodes.states import NodeState
from common.outbox import enqueue
from common.reconcile.plan import (
    Action,
    Assign,
    FinishStop,
    KeepWaiting,
    MarkNodeActive,
    MarkNodeOffline,
    NodeView,
    Recover,
    RestreamView,
    Sync,
    plan,
)
from common.restreams import repository as restream_repository
from common.restreams.lifecycle import transition
from common.restreams.service import assign, definition_of, leave_pending
from common.restreams.states import RestreamState

log = logging.getLogger(__name__)
# Any 64-bit constant works; this one spells "sfreconc" in ASCII.
RECONCILE_LOCK_ID = 0x7366_7265_636F_6E63
S = RestreamState


@dataclass
class RoundSummary:
    ran: bool
    duration_ms: float = 0.0
    actions: dict[str, int] = field(default_factory=dict)


def reconcile(db: Database, client: redis.Redis, settings: Settings) -> RoundSummary:
    started = time.perf_counter()
    with db.transaction() as session:
        if not session.execute(
            text("SELECT pg_try_advisory_xact_lock(:id)"), {"id": RECONCILE_LOCK_ID}
        ).scalar_one():
            return RoundSummary(ran=False)
        nodes = node_repository.all_nodes(session)
        leases = live.read_leases(client, [n.name for n in nodes])
        restreams = restream_repository.needing_attention(session)
        now = datetime.now(UTC)
        actions = plan(
            [NodeView(n.name, n.state, leases.get(n.name)) for n in nodes],
            [_view(r, now) for r in restreams],
            policy=settings.placement_policy,
            stop_confirm_s=2 * settings.lease_renew_interval_s + 1,
        )
        snapshot = {r.id: (r.state, r.generation, r.node_name) for r in restreams}
        counts: dict[str, int] = {}
        for action in actions:
            if _apply(session, action, snapshot):
                name = type(action).__name__
                counts[name] = counts.get(name, 0) + 1
    summary = RoundSummary(ran=True, duration_ms=(time.perf_counter() - started) * 1000)
    summary.actions = counts
    if set(counts) - {"Sync"}:
        log.info("reconciled in %.0f ms: %s", summary.duration_ms, counts)
    return summary


def _view(restream: Restream, now: datetime) -> RestreamView:
    return RestreamView(
        id=restream.id,
        state=restream.state,
        active=restream.active,
        node=restream.node_name,
        generation=restream.generation,
        needs=requirements(definition_of(restream)),
        state_age_s=(now - restream.state_changed_at).total_seconds(),
    )


def _apply(
    session: Session, action: Action, snapshot: dict[str, tuple[S, int, str | None]]
) -> bool:
    """Apply one action; False when its row changed since the snapshot (skipped)."""
    if isinstance(action, Sync):
        enqueue(session, sync_message(action.node, action.desired))
        return True
    if isinstance(action, MarkNodeOffline | MarkNodeActive):
        node = node_repository.get(session, action.node, for_update=True)
        target = NodeState.OFFLINE if isinstance(action, MarkNodeOffline) else NodeState.ACTIVE
        if node is None or node.state is target:
            return False
        node_service.transition(session, node, target, action.reason)
        return True
    restream = restream_repository.get(session, action.restream_id, None, for_update=True)
    if restream is None or snapshot.get(restream.id) != (
        restream.state,
        restream.generation,
        restream.node_name,
    ):
        return False
    if isinstance(action, Recover):
        transition(session, restream, S.RECOVERING, action.reason)
        restream.node_name = None
    elif isinstance(action, FinishStop):
        transition(session, restream, S.IDLE, action.reason)
        restream.node_name = None
    elif isinstance(action, Assign):
        if restream.state not in (S.PENDING, S.RECOVERING):
            return False
        assign(session, restream, action.node)
    elif isinstance(action, KeepWaiting):
        leave_pending(session, restream, action.reason)
    snapshot[restream.id] = (restream.state, restream.generation, restream.node_name)
    return True
