"""What a worker reports about the FFmpeg of one placement (restream, generation).

The reports are values (`Report`): the worker's supervisor says what happened in one of them,
the worker's reporter hands it to `apply`, and nothing restates their fields on the way.
Every report is compare-and-set on the generation: a report about a generation the control
plane has moved past changes nothing but that generation's own run row. Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import InstrumentedAttribute, Session

from common import events
from common.definitions.states import Phase, RunState
from common.ffmpeg.outcome import Outcome
from common.lifecycle import commands
from common.models import Restream, Run
from common.restreams import repository, runs

P, R = Phase, RunState
# Phases in which the node named may (re)start the restream's FFmpeg: placed there, or
# waiting there for the node to answer again (RECOVERING with its node kept).
RUNNABLE_PHASES = frozenset({P.PLACED, P.RECOVERING})


@dataclass(frozen=True)
class Attempt:
    """Which FFmpeg a report is about."""

    restream_id: str
    generation: int
    node: str


# -- the reports ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Starting:
    """FFmpeg spawned."""

    pid: int
    restarts: int


@dataclass(frozen=True)
class Running:
    """Media flows."""


@dataclass(frozen=True)
class Waiting:
    """Placed, but no media flows: its source is lost (FFmpeg waits for it, or tries it again
    soon), or a listen input has no publisher. `error`: FFmpeg's own words, if it exited."""

    reason: str
    error: str | None = None


@dataclass(frozen=True)
class Retrying:
    """FFmpeg failed; it runs again after `backoff_s`."""

    error: str
    stderr_tail: Sequence[str]
    restarts: int
    backoff_s: float
    exit_code: int | None


@dataclass(frozen=True)
class Failed:
    """The retry budget is spent (or the job cannot run): FAILED until started again."""

    error: str
    stderr_tail: Sequence[str]
    exit_code: int | None
    reason: str


@dataclass(frozen=True)
class Ended:
    """The FFmpeg of this attempt is gone for good (stopped, replaced, fenced)."""

    outcome: Outcome
    exit_code: int | None
    fence_reason: str = "its lease could not be renewed"


@dataclass(frozen=True)
class Switched:
    """Another input is on air (continuity): `on_air` (primary, backup, slate), and why."""

    on_air: str
    reason: str


Report = Starting | Running | Waiting | Retrying | Failed | Ended | Switched


def apply(session: Session, attempt: Attempt, report: Report) -> Restream | None:
    """Record `report`. Returns the restream when it ended still wanted (PENDING: the
    reconciler places it next round), else None."""
    match report:
        case Starting():
            _starting(session, attempt, report)
        case Running():
            _running(session, attempt)
        case Waiting():
            _waiting(session, attempt, report)
        case Retrying():
            _retrying(session, attempt, report)
        case Failed():
            _failed(session, attempt, report)
        case Ended():
            return _ended(session, attempt, report)
        case Switched():
            _switched(session, attempt, report)
    return None


def _switched(session: Session, attempt: Attempt, report: Switched) -> None:
    """An event, no change of state: the restream runs on, from another input."""
    restream = _current(session, attempt)
    if restream is not None:
        events.record(
            session,
            subject_kind=events.RESTREAM,
            subject_id=restream.id,
            reason=f"on air: {report.on_air} ({report.reason})",
            kind=events.INPUT_SWITCH,
            project_id=restream.project_id,
            node_name=attempt.node,
            generation=attempt.generation,
        )


def _current(session: Session, attempt: Attempt) -> Restream | None:
    """The restream if this attempt is still its current placement, locked; else None."""
    restream = repository.lock(session, attempt.restream_id, None)  # and the changes' time
    return _if_current(restream, attempt)


def _if_current(restream: Restream | None, attempt: Attempt) -> Restream | None:
    if (
        restream is None
        or restream.generation != attempt.generation
        or restream.node_name != attempt.node
    ):
        return None
    return restream


def _current_setting_run(
    session: Session, attempt: Attempt, unset: InstrumentedAttribute[Any], values: dict[str, Any]
) -> tuple[Restream | None, bool]:
    """`_current`, and `values` written on the attempt's run if its `unset` is still unset
    (whether the attempt is current or not: a run's row is its own), in one statement. False
    when that did not happen: no such run yet, or `unset` set already (`_run` is the rest)."""
    write = runs.set_once(unset.key, tuple(sorted(values)))
    params = runs.set_once_params(attempt.restream_id, attempt.generation, values)
    restream, written = repository.lock_and_write(session, attempt.restream_id, write, params)
    return _if_current(restream, attempt), written > 0


def _run(session: Session, attempt: Attempt) -> Run | None:
    """The attempt's run, made if there is none yet and the restream is still there. Its
    callers locked the restream first: its row is in the session already (`session.get`
    asks PostgreSQL only when it is not)."""
    run = runs.run_of(session, attempt.restream_id, attempt.generation)
    if run is None and session.get(Restream, attempt.restream_id) is not None:
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
        or restream.phase not in RUNNABLE_PHASES
    ):
        return None
    return restream


def owned_by(session: Session, node: str) -> dict[str, int]:
    """Restream id -> generation of everything `node` should run now."""
    return repository.runnable_on(session, node, RUNNABLE_PHASES)


def _starting(session: Session, attempt: Attempt, report: Starting) -> None:
    restream = _current(session, attempt)
    run = _run(session, attempt)
    if run is not None:
        run.restarts = report.restarts
    # The first start of a run tells the restream nothing new: it shows STARTING from its
    # placement on (its run's row has the pid). A start after a retry does.
    if restream is not None and restream.run is not None:
        commands.observe(
            session, restream, R.STARTING, f"FFmpeg started on {attempt.node} (pid {report.pid})"
        )
        _answers_again(session, restream, attempt)


def _running(session: Session, attempt: Attempt) -> None:
    now = datetime.now(UTC)
    restream, written = _current_setting_run(session, attempt, Run.running_at, {"running_at": now})
    if not written:
        run = _run(session, attempt)  # none yet (its start not recorded), or running before
        if run is not None and run.running_at is None:
            run.running_at = now
    if restream is not None:
        restream.last_error = None
        commands.observe(session, restream, R.RUNNING, "FFmpeg is making progress")
        _answers_again(session, restream, attempt)


def _answers_again(session: Session, restream: Restream, attempt: Attempt) -> None:
    """A node the restream was RECOVERING on (it had stopped answering, or fenced) reports
    that it runs it again, as soon as it holds its lease again: the control plane places it
    there again in the same transaction, without waiting for the reconciler's round (which
    would do the same, or stop it there if the node is draining by then)."""
    if restream.phase is P.RECOVERING and restream.active:
        commands.resume(session, restream, f"node {attempt.node} answers again and runs it")


def _waiting(session: Session, attempt: Attempt, report: Waiting) -> None:
    reason, error = report.reason, report.error
    restream = _current(session, attempt)
    if error is not None:
        run = _run(session, attempt)
        if run is not None:
            run.last_error = error
    if restream is not None:
        if error is not None:
            restream.last_error = error
        commands.observe(session, restream, R.WAITING, reason)


def _retrying(session: Session, attempt: Attempt, report: Retrying) -> None:
    restream = _current(session, attempt)
    run = _run(session, attempt)
    if run is not None:
        run.restarts, run.last_error = report.restarts, report.error
        run.stderr_tail, run.exit_code = "\n".join(report.stderr_tail), report.exit_code
    if restream is not None:
        restream.last_error = report.error
        reason = f"{report.error}; restarting in {report.backoff_s:.1f} s"
        commands.observe(session, restream, R.RETRYING, reason)


def _failed(session: Session, attempt: Attempt, report: Failed) -> None:
    restream = _end_run(
        session,
        attempt,
        outcome="failed",
        exit_code=report.exit_code,
        error=report.error,
        stderr_tail=report.stderr_tail,
    )
    if restream is not None:
        restream.last_error = report.error
        commands.fail(session, restream, f"{report.reason}: {report.error}")


def _ended(session: Session, attempt: Attempt, report: Ended) -> Restream | None:
    """A stop the operator asked for ends in IDLE. A restream still wanted (a move off a
    draining node) is returned PENDING: the reconciler places it, next round. One whose node fenced
    it while it ran is RECOVERING, still on that node.
    """
    outcome = report.outcome
    restream = _end_run(
        session,
        attempt,
        outcome=outcome.value,
        exit_code=report.exit_code,
        error=None,
        stderr_tail=(),
    )
    gone = f"FFmpeg on {attempt.node} {outcome.value}"
    if restream is not None and outcome is Outcome.FENCED and restream.phase is P.PLACED:
        # The node could not renew its lease: its copy is gone, and runs again here once the
        # lease is back, or elsewhere once it lapses. The node stays named until then.
        commands.mark_silent(session, restream, f"fenced on {attempt.node}: {report.fence_reason}")
        commands.observe(session, restream, R.ENDED, gone)
        return None
    if restream is None or restream.phase is not P.STOPPING:
        return None
    commands.observe(session, restream, R.ENDED, gone)
    reason = f"left {attempt.node}: moving to another node" if restream.active else gone
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
) -> Restream | None:
    """End the attempt's run; the restream if the attempt is still its current placement,
    locked (`_current`). The restream's row is locked before its run's, as every writer locks
    them: a request deleting the restream (its runs go with it) would otherwise deadlock with
    this report."""
    values: dict[str, object] = {"ended_at": datetime.now(UTC), "outcome": outcome,
                                 "exit_code": exit_code}  # fmt: skip
    if error is not None:
        values["last_error"] = error
    if stderr_tail:
        values["stderr_tail"] = "\n".join(stderr_tail)
    restream, written = _current_setting_run(session, attempt, Run.ended_at, values)
    if written:
        return restream
    run = _run(session, attempt)  # none yet (its start not recorded), or ended before
    if run is not None and run.ended_at is None:
        for name, value in values.items():
            setattr(run, name, value)
    return restream
