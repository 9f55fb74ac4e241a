"""The one writer of a restream's lifecycle: every change of its state, its placement and its
reservation is one of these commands, named after its intent. Each makes the transition
(through the declared table, with an event saying why), takes or gives back what the
restream holds on its node, and queues the control message that goes with it (sent after the
commit): together, or not at all.

Who calls which: the API's services (`want_running`, `want_stopped`, `move`, `discard`),
placement (`assign`, `keep_waiting`), node drains and the reconciler (`move`, `mark_lost`,
`mark_silent`, `resume`, `finish_stop`), the workers' reports (`observe`, `fail`,
`finish_stop`). Nothing else writes `restreams.state`, `node_name` or a reservation.

A command that the table refuses raises `IllegalTransition`, except a worker's observation,
which can always arrive late (a `running` for a restream being stopped): it is ignored,
logged and counted (`REFUSED`), never silently.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy.orm import Session

from common import events
from common.celery_app import start_message, stop_message
from common.db import database_now
from common.definitions.states import (
    PLACED_STATES,
    RESTREAM_TRANSITIONS,
    UNPLACED_WANTED_STATES,
    RestreamState,
)
from common.models import Restream
from common.nodes.capabilities import Requirements
from common.nodes.capacity import Reservation, U30Load
from common.outbox import enqueue

log = logging.getLogger(__name__)
S = RestreamState
# Observations the table refused, by (state, observed): late reports, counted for /metrics.
REFUSED: Counter[tuple[str, str]] = Counter()


# -- what the API asks ---------------------------------------------------------------------


def want_running(session: Session, restream: Restream, reason: str) -> bool:
    """Wanted running. True when it waits for a node now (the caller places it); False when
    it has one, or must wait for its FFmpeg to leave one first (STOPPING), or for a node that
    stopped answering (RECOVERING there)."""
    restream.active = True
    if restream.state in PLACED_STATES or restream.state is S.STOPPING or holds_node(restream):
        return False
    if restream.state in (S.IDLE, S.FAILED):
        _transition(session, restream, S.PENDING, reason)
    return True


def want_stopped(session: Session, restream: Restream, reason: str) -> None:
    """Not wanted any more: stopped where it runs (STOPPING until its FFmpeg is gone), or at
    rest at once if it runs nowhere."""
    restream.active = False
    if restream.node_name is not None and (restream.state in PLACED_STATES or holds_node(restream)):
        move(session, restream, reason)
    elif restream.state in (*UNPLACED_WANTED_STATES, S.FAILED):
        _transition(session, restream, S.IDLE, reason)
        _release(restream)


def move(session: Session, restream: Restream, reason: str, *, notify: bool = True) -> None:
    """Stop it where it runs — to run it anew (a restart, a new definition), elsewhere (a
    drain), or not at all — and keep its node until its FFmpeg is gone (`finish_stop`).
    `notify`: send the node the stop (a node draining itself needs none)."""
    assert restream.node_name is not None  # placed
    _transition(session, restream, S.STOPPING, reason)
    if notify:
        enqueue(session, stop_message(restream.node_name, restream.id, restream.generation))


def discard(session: Session, restream: Restream) -> None:
    """Deleted: its FFmpeg, if any, is stopped after the commit."""
    if restream.node_name is not None:
        enqueue(session, stop_message(restream.node_name, restream.id, restream.generation))
    session.delete(restream)
    session.flush()  # before another row's delete: the database would cascade behind our back


# -- placement ------------------------------------------------------------------------------


def assign(
    session: Session, restream: Restream, node: str, needs: Requirements, u30_device: int | None
) -> None:
    """Give it to `node` as a new generation holding what it needs there; the node is told
    after the commit."""
    restream.node_name = node
    restream.generation += 1
    restream.reserved_millicores = needs.cost.cpu_millicores
    restream.u30_device = u30_device
    restream.u30_load = needs.cost.u30.as_dict() if needs.cost.u30 is not None else None
    restream.listen_port = needs.listen_port
    _transition(session, restream, S.STARTING, f"placed on {node}")
    enqueue(session, start_message(node, restream.id, restream.generation))


def keep_waiting(session: Session, restream: Restream, reason: str) -> None:
    """No node fits: PENDING, saying why."""
    _release(restream)
    if restream.state is S.PENDING:
        restream.state_reason = reason
    else:
        _transition(session, restream, S.PENDING, reason)


# -- nodes lost and found ------------------------------------------------------------------


def mark_lost(session: Session, restream: Restream, reason: str) -> None:
    """Its node is gone (its lease lapsed: its copy is dead): RECOVERING, unplaced."""
    _transition(session, restream, S.RECOVERING, reason)
    _release(restream)


def mark_silent(session: Session, restream: Restream, reason: str) -> None:
    """Its node stopped answering (or fenced it): RECOVERING, still on that node, which may
    still be stopping its copy, until it answers again or is lost."""
    _transition(session, restream, S.RECOVERING, reason)


def resume(session: Session, restream: Restream, reason: str) -> None:
    """Its node answers again and still runs its FFmpeg: RUNNING."""
    _transition(session, restream, S.RUNNING, reason)


def finish_stop(session: Session, restream: Restream, reason: str) -> None:
    """Its FFmpeg is certainly gone: at rest (IDLE), or PENDING if it is still wanted — then
    the reconciler places it, next round."""
    _transition(session, restream, S.PENDING if restream.active else S.IDLE, reason)
    _release(restream)


# -- what workers report -------------------------------------------------------------------


def observe(session: Session, restream: Restream, observed: RestreamState, reason: str) -> bool:
    """What its FFmpeg does, as its node reports it. False (logged, counted) when the table
    refuses it: a late report, about a restream the control plane has moved on."""
    if restream.state is observed:
        return True
    if not RESTREAM_TRANSITIONS.allows(restream.state, observed):
        REFUSED[(restream.state.value, observed.value)] += 1
        log.info(
            "report ignored: %s cannot go from %s to %s (%s)",
            restream.id,
            restream.state.value,
            observed.value,
            reason,
        )
        return False
    _transition(session, restream, observed, reason)
    return True


def fail(session: Session, restream: Restream, reason: str) -> None:
    """Its retry budget is spent (or it cannot run): FAILED, unplaced, until started again."""
    if observe(session, restream, S.FAILED, reason):
        _release(restream)


# -- reading --------------------------------------------------------------------------------


def holds_node(restream: Restream) -> bool:
    """RECOVERING on a node that stopped answering: its copy there may still be stopping, so
    it holds that node, and starts nowhere else, until the node answers or is lost."""
    return restream.state is S.RECOVERING and restream.node_name is not None


def reservation_of(restream: Restream) -> Reservation:
    return Reservation(
        cpu_millicores=restream.reserved_millicores,
        u30_device=restream.u30_device,
        u30=U30Load.from_dict(restream.u30_load) if restream.u30_load else None,
        listen_port=restream.listen_port,
    )


# -- the two primitives every command is made of -------------------------------------------


def _transition(session: Session, restream: Restream, target: RestreamState, reason: str) -> None:
    """Move it to `target` (raises `IllegalTransition` if undeclared) and record why."""
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


def _release(restream: Restream) -> None:
    """Unplace it: no node, nothing held."""
    restream.node_name = None
    restream.reserved_millicores = 0
    restream.u30_device = None
    restream.u30_load = None
    restream.listen_port = None
