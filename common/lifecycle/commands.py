"""The one writer of what the control plane wants of a restream: every change of its phase,
its placement and its reservation is one of these commands, named after its intent. Each makes
the transition (through the declared table, with an event saying why), takes or gives back what
the restream holds on its node, and queues the control message that goes with it (sent after
the commit): together, or not at all. Its worker's reports reach its run only through
`observe` (and `fail`, which also gives up on it).

Who calls which: the API's services (`want_running`, `want_stopped`, `move`, `discard`),
placement (`assign`, `keep_waiting`), node drains and the reconciler (`move`, `mark_lost`,
`mark_silent`, `resume`, `finish_stop`), the workers' reports (`observe`, `fail`,
`finish_stop`, `mark_silent`). Nothing else writes a restream's phase, run, node or
reservation.

A command that the phase table refuses raises `IllegalTransition`. A report the run table
refuses (a report out of order) is ignored, logged and counted (`REFUSED`), never silently.
What a restream shows (`Restream.state`) follows from both; each change of it is checked
against the declared table of shown moves and recorded as an event.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta

from sqlalchemy.orm import Session

from common import events
from common.celery_app import start_message, stop_message
from common.db import database_now
from common.definitions.states import (
    PHASE_TRANSITIONS,
    RESTREAM_TRANSITIONS,
    RUN_TRANSITIONS,
    Phase,
    RestreamState,
    RunState,
)
from common.models import Restream
from common.nodes.capabilities import Requirements
from common.nodes.capacity import Reservation, U30Load
from common.outbox import enqueue
from common.restreams import repository

log = logging.getLogger(__name__)
P, R = Phase, RunState
# Reports the run table refused, by (run state, reported): out of order, counted for /metrics.
REFUSED: Counter[tuple[str, str]] = Counter()


# -- what the API asks ---------------------------------------------------------------------


def want_running(session: Session, restream: Restream, reason: str) -> bool:
    """Wanted running. True when it waits for a node now (the caller places it); False when
    it has one, or must wait for its FFmpeg to leave one first (STOPPING), or for a node that
    stopped answering (RECOVERING there)."""
    before = restream.state
    if not restream.active and restream.run_for_s:  # a new run: it lasts at most run_for_s
        until = database_now(session) + timedelta(seconds=restream.run_for_s)
        restream.stop_at = until if restream.stop_at is None else min(restream.stop_at, until)
    restream.active = True
    if restream.phase in (P.PLACED, P.STOPPING) or holds_node(restream):
        return False
    if restream.phase is P.IDLE:
        _set_phase(session, restream, P.PENDING, reason, before=before)
    return True


def held_reason(session: Session, restream: Restream) -> str | None:
    """What holds it from running (its own hold or its source's), or None."""
    if restream.holds:
        holds = " and ".join(restream.holds)
        return (
            f"restream {restream.id} is {holds} (on the {restream.surface} surface, which "
            "created it): lift that there first"
        )
    source = repository.get(session, restream.source_id, None) if restream.source_id else None
    if source is not None and source.holds:
        holds = " and ".join(source.holds)
        return f"its source {source.id} is {holds} (on the {source.surface} surface)"
    return None


def want_stopped(session: Session, restream: Restream, reason: str) -> None:
    """Not wanted any more: stopped where it runs (STOPPING until its FFmpeg is gone), or at
    rest at once if it runs nowhere."""
    before = restream.state
    restream.active = False
    restream.stop_at = None  # a scheduled stop is for the run that ends here
    if restream.node_name is not None and (restream.phase is P.PLACED or holds_node(restream)):
        move(session, restream, reason)
    elif restream.phase in (P.PENDING, P.RECOVERING):
        _set_phase(session, restream, P.IDLE, reason, before=before)
        _release(restream)
    elif restream.state is not before:  # one that had failed: at rest now
        _record(session, restream, before, reason)


def move(session: Session, restream: Restream, reason: str, *, notify: bool = True) -> None:
    """Stop it where it runs — to run it anew (a restart, a new definition), elsewhere (a
    drain), or not at all — and keep its node until its FFmpeg is gone (`finish_stop`).
    `notify`: send the node the stop (a node draining itself needs none)."""
    assert restream.node_name is not None  # placed
    _set_phase(session, restream, P.STOPPING, reason)
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
    """Give it to `node` as a new generation (a new run, nothing reported of it yet) holding
    what it needs there; the node is told after the commit."""
    before = restream.state
    restream.node_name = node
    restream.generation += 1
    restream.reserved_millicores = needs.cost.cpu_millicores
    restream.u30_device = u30_device
    restream.u30_load = needs.cost.u30.as_dict() if needs.cost.u30 is not None else None
    restream.listen_port = needs.listen_port
    _set_phase(session, restream, P.PLACED, f"placed on {node}", before=before)
    enqueue(session, start_message(node, restream.id, restream.generation))


def keep_waiting(session: Session, restream: Restream, reason: str) -> None:
    """No node fits: PENDING, saying why."""
    _release(restream)
    if restream.phase is P.PENDING:
        restream.phase_reason = reason
    else:
        _set_phase(session, restream, P.PENDING, reason)


# -- nodes lost and found ------------------------------------------------------------------


def mark_lost(session: Session, restream: Restream, reason: str) -> None:
    """Its node is gone (its lease lapsed: its copy is dead): RECOVERING, unplaced."""
    _set_phase(session, restream, P.RECOVERING, reason)
    _release(restream)


def mark_silent(session: Session, restream: Restream, reason: str) -> None:
    """Its node stopped answering (or fenced it): RECOVERING, still on that node, which may
    still be stopping its copy, until it answers again or is lost."""
    _set_phase(session, restream, P.RECOVERING, reason)


def resume(session: Session, restream: Restream, reason: str) -> None:
    """Its node answers again: placed there, as before. Its run says the rest (its FFmpeg
    kept running, or the node starts it again)."""
    _set_phase(session, restream, P.PLACED, reason)


def finish_stop(session: Session, restream: Restream, reason: str) -> None:
    """Its FFmpeg is certainly gone: at rest (IDLE), or PENDING if it is still wanted — then
    the reconciler places it, next round."""
    _set_phase(session, restream, P.PENDING if restream.active else P.IDLE, reason)
    _release(restream)


# -- what workers report -------------------------------------------------------------------


def observe(session: Session, restream: Restream, run: RunState, reason: str) -> bool:
    """What the FFmpeg of its current placement does, as its node reports it (the caller
    checked that the report is about that placement). False (logged, counted) when the run
    table refuses it: a report out of order."""
    before = restream.state
    if not _set_run(session, restream, run, reason):
        return False
    if restream.state is not before:
        _record(session, restream, before, reason)
    return True


def fail(session: Session, restream: Restream, reason: str) -> None:
    """Its retry budget is spent (or it cannot run): the control plane gives up on it —
    unplaced, FAILED until it is started again (or stopped)."""
    before = restream.state
    if not _set_run(session, restream, R.FAILED, reason):
        return
    if restream.phase in (P.PLACED, P.RECOVERING):
        _set_phase(session, restream, P.IDLE, reason, before=before)
        _release(restream)
    elif restream.state is not before:
        _record(session, restream, before, reason)


# -- reading --------------------------------------------------------------------------------


def holds_node(restream: Restream) -> bool:
    """RECOVERING on a node that stopped answering: its copy there may still be stopping, so
    it holds that node, and starts nowhere else, until the node answers or is lost."""
    return restream.phase is P.RECOVERING and restream.node_name is not None


def reservation_of(restream: Restream) -> Reservation:
    return Reservation(
        cpu_millicores=restream.reserved_millicores,
        u30_device=restream.u30_device,
        u30=U30Load.from_dict(restream.u30_load) if restream.u30_load else None,
        listen_port=restream.listen_port,
    )


# -- the primitives every command is made of ------------------------------------------------


def _set_phase(
    session: Session,
    restream: Restream,
    target: Phase,
    reason: str,
    *,
    before: RestreamState | None = None,
) -> None:
    """Move its phase to `target` (raises `IllegalTransition` if undeclared) and record why.
    `before`: what it showed before the caller's own changes, if it made any."""
    shown_before = before if before is not None else restream.state
    PHASE_TRANSITIONS.check(restream.phase, target)
    restream.phase = target
    restream.phase_reason = reason
    restream.phase_changed_at = database_now(session)
    _record(session, restream, shown_before, reason)


def _set_run(session: Session, restream: Restream, run: RunState, reason: str) -> bool:
    """Record a report about its current run; False (logged, counted) if out of order."""
    current = restream.run
    if current is run:
        return True
    if current is not None and not RUN_TRANSITIONS.allows(current, run):
        REFUSED[(current.value, run.value)] += 1
        log.info(
            "report ignored: the run of %s cannot go from %s to %s (%s)",
            restream.id,
            current.value,
            run.value,
            reason,
        )
        return False
    restream.run_state, restream.run_generation = run, restream.generation
    restream.run_reason = reason
    restream.run_changed_at = database_now(session)
    return True


def _record(session: Session, restream: Restream, before: RestreamState, reason: str) -> None:
    """An event of the change of what it shows (checked against the declared table of shown
    moves), or of its phase's, if what it shows stayed the same."""
    after = restream.state
    if after is not before:
        RESTREAM_TRANSITIONS.check(before, after)
    events.record(
        session,
        subject_kind=events.RESTREAM,
        subject_id=restream.id,
        project_id=restream.project_id,
        from_state=before.value,
        to_state=after.value,
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
