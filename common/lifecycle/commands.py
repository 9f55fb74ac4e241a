"""Changing a restream's observed state: through the transition table, with an event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from common import events
from common.db import database_now
from common.definitions.states import RESTREAM_TRANSITIONS, RestreamState
from common.models import Restream
from common.nodes.capabilities import Requirements
from common.nodes.capacity import Reservation, U30Load


def transition(session: Session, restream: Restream, target: RestreamState, reason: str) -> None:
    """Move `restream` to `target` (raises `IllegalTransition` if undeclared) and record why."""
    current = restream.state
    RESTREAM_TRANSITIONS.check(current, target)
    restream.state = target
    restream.state_reason = reason
    restream.state_changed_at = database_now(session)
    events.record(
        session,
        subject_kind=events.RESTREAM,
        subject_id=restream.id,
        project_id=restream.project_id,
        from_state=current.value,
        to_state=target.value,
        reason=reason,
        node_name=restream.node_name,
        generation=restream.generation,
    )


def reserve(restream: Restream, node: str, needs: Requirements, u30_device: int | None) -> None:
    """Place `restream` on `node` holding what it needs: a new generation there."""
    restream.node_name = node
    restream.generation += 1
    restream.reserved_millicores = needs.cost.cpu_millicores
    restream.u30_device = u30_device
    restream.u30_load = needs.cost.u30.as_dict() if needs.cost.u30 is not None else None
    restream.listen_port = needs.listen_port


def release(restream: Restream) -> None:
    """Unplace `restream`: no node, nothing held."""
    restream.node_name = None
    restream.reserved_millicores = 0
    restream.u30_device = None
    restream.u30_load = None
    restream.listen_port = None


def reservation_of(restream: Restream) -> Reservation:
    return Reservation(
        cpu_millicores=restream.reserved_millicores,
        u30_device=restream.u30_device,
        u30=U30Load.from_dict(restream.u30_load) if restream.u30_load else None,
        listen_port=restream.listen_port,
    )
