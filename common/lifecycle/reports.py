"""What a worker reports about the FFmpeg of one placement (restream, generation).

Every report is compare-and-set on the generation: a report about a generation the control
plane has moved past changes nothing but that generation's own run row. Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from common.definitions.states import PLACED_STATES, RestreamState
from common.ffmpeg.outcome import Outcome
from common.lifecycle import commands
from common.models import Restream, Run
from common.restreams import repository

S = RestreamState
# States in which the node named may (re)start the restream's FFmpeg: placed there, or
# waiting there for the node to answer again (RECOVERING with its node kept).
RUNNABLE_STATES = frozenset({*PLACED_STATES, S.RECOVERING})


@dataclass(frozen=True)
class Attempt:
    """Which FFmpeg a report is about."""

    restream_id: str
    generation: int
    node: str


def _current(session: Session, attempt: Attempt) -> Restream | None:
    """The restream if this attempt is still its current placement, locked; else None."""
    restream = repository.get(session, attempt.restream_id, None, for_update=True)
    if (
        restream is None
        or restream.generation != attempt.generation
        or restream.node_name != attempt.node
    ):
        return None
    return restream


def _run(session: Session, attempt: Attempt) -> Run | None:
    run = repository.run_of(session, attempt.restream_id, attempt.generation)
    if run is None and repository.get(session, attempt.restream_id, None) is not None:
        run = Run(
            restream_id=attempt.restream_id,
            node_name=attempt.node,
            generation=attempt.generation,
            restarts=0,
        )
        session.add(run)
    return run


def should_run(session: Session, attempt: Attempt) -> Restream | None:
    """The restream, if the node in `attempt` should run this generation now; else None."""
    restream = repository.get(session, attempt.restream_id, None)
    if (
        restream is None
        or not restream.active
        or restream.generation != attempt.generation
        or restream.node_name != attempt.node
        or restream.state not in RUNNABLE_STATES
    ):
        return None
    return restream


def owned_by(session: Session, node: str) -> dict[str, int]:
    """Restream id -> generation of everything `node` should run now."""
    return repository.runnable_on(session, node, RUNNABLE_STATES)


def starting(session: Session, attempt: Attempt, *, pid: int, restarts: int) -> None:
    restream = _current(session, attempt)
    run = _run(session, attempt)
    if run is not None:
        run.restarts = restarts
    if restream is not None:
        commands.observe(
            session, restream, S.STARTING, f"FFmpeg started on {attempt.node} (pid {pid})"
        )


def running(session: Session, attempt: Attempt) -> None:
    restream = _current(session, attempt)
    run = _run(session, attempt)
    if run is not None and run.running_at is None:
        run.running_at = datetime.now(UTC)
    if restream is not None:
        restream.last_error = None
        commands.observe(session, restream, S.RUNNING, "FFmpeg is making progress")


def waiting(session: Session, attempt: Attempt, *, reason: str, error: str | None) -> None:
    """Placed, but no media flows: its source is lost (FFmpeg waits for it, or tries it again
    soon), or a listen input has no publisher. `error`: FFmpeg's own words, if it exited."""
    restream = _current(session, attempt)
    if error is not None:
        run = _run(session, attempt)
        if run is not None:
            run.last_error = error
    if restream is not None:
        if error is not None:
            restream.last_error = error
        commands.observe(session, restream, S.WAITING, reason)


def retrying(
    session: Session,
    attempt: Attempt,
    *,
    error: str,
    stderr_tail: Sequence[str],
    restarts: int,
    backoff_s: float,
    exit_code: int | None,
) -> None:
    restream = _current(session, attempt)
    run = _run(session, attempt)
    if run is not None:
        run.restarts, run.last_error = restarts, error
        run.stderr_tail, run.exit_code = "\n".join(stderr_tail), exit_code
    if restream is not None:
        restream.last_error = error
        commands.observe(session, restream, S.RETRYING, f"{error}; restarting in {backoff_s:.1f} s")


def failed(
    session: Session,
    attempt: Attempt,
    *,
    error: str,
    stderr_tail: Sequence[str],
    exit_code: int | None,
    reason: str,
) -> None:
    """The retry budget is spent (or the job cannot run): FAILED until started again."""
    restream = _current(session, attempt)
    _end_run(
        session,
        attempt,
        outcome="failed",
        exit_code=exit_code,
        error=error,
        stderr_tail=stderr_tail,
    )
    if restream is not None:
        restream.last_error = error
        commands.fail(session, restream, f"{reason}: {error}")


def ended(
    session: Session,
    attempt: Attempt,
    *,
    outcome: str,
    exit_code: int | None,
    fence_reason: str = "its lease could not be renewed",
) -> Restream | None:
    """The FFmpeg of this attempt is gone for good (stopped, replaced, fenced).

    A stop the operator asked for ends in IDLE. A restream still wanted (a move off a
    draining node) is returned PENDING: the reconciler places it, next round. One whose node fenced
    it while it ran is RECOVERING, still on that node.
    """
    _end_run(session, attempt, outcome=outcome, exit_code=exit_code, error=None, stderr_tail=())
    restream = _current(session, attempt)
    if restream is not None and outcome == Outcome.FENCED and restream.state in PLACED_STATES:
        # The node could not renew its lease: its copy is gone, and runs again here once the
        # lease is back, or elsewhere once it lapses. The node stays named until then.
        commands.mark_silent(session, restream, f"fenced on {attempt.node}: {fence_reason}")
        return None
    if restream is None or restream.state is not S.STOPPING:
        return None
    reason = (
        f"left {attempt.node}: moving to another node"
        if restream.active
        else f"FFmpeg on {attempt.node} {outcome}"
    )
    commands.finish_stop(session, restream, reason)
    return restream if restream.active else None


def _end_run(
    session: Session,
    attempt: Attempt,
    *,
    outcome: str,
    exit_code: int | None,
    error: str | None,
    stderr_tail: Sequence[str],
) -> None:
    run = _run(session, attempt)
    if run is None or run.ended_at is not None:
        return
    run.ended_at = datetime.now(UTC)
    run.outcome, run.exit_code = outcome, exit_code
    if error is not None:
        run.last_error = error
    if stderr_tail:
        run.stderr_tail = "\n".join(stderr_tail)
