"""The states of restreams and of worker nodes, and the transitions between them (DESIGN §2,
§4): one declared table each; an undeclared move is an error.

A restream's state is two records and a view of them. Its `Phase` is what the control plane
wants and has arranged (written only by `common.lifecycle.commands`); its `RunState` is what
the FFmpeg of its current placement does, as its worker reports it (written only from those
reports). The `RestreamState` every surface shows is `shown(phase, active, run)`: a pure
function of both.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from common.transitions import TransitionTable


class RestreamState(StrEnum):
    IDLE = "idle"  # not wanted, nothing runs
    PENDING = "pending"  # wanted, waiting for a node that fits
    STARTING = "starting"  # assigned, FFmpeg spawned (or about to be), no progress yet
    RUNNING = "running"  # progress advancing
    WAITING = "waiting"  # FFmpeg placed, but no media flows: its source is lost (or a listen
    # input has no publisher); it keeps trying for as long as the restream is wanted
    RETRYING = "retrying"  # FFmpeg exited or stalled; backing off before a restart
    FAILED = "failed"  # retry budget spent or permanent error; waits for a new start
    # Its node was lost. With a node still named: that node stopped answering and its copy is
    # stopping (fenced) or gone, which is certain only once its lease lapses; it runs again
    # there if the node answers first, else it is placed elsewhere. With none: being placed.
    RECOVERING = "recovering"
    STOPPING = "stopping"  # stop sent to the node, FFmpeg not yet gone


S = RestreamState


class Phase(StrEnum):
    """What the control plane wants of a restream, and where it stands in arranging it."""

    IDLE = "idle"  # not pursued: never started, stopped, or given up on (its run failed)
    PENDING = "pending"  # wanted, waiting for a node that fits
    PLACED = "placed"  # given to a node, which runs it (see its run)
    STOPPING = "stopping"  # its node was told to stop it; it holds that node until it is gone
    # Its node stopped answering (still named: its copy may run there until the node answers
    # or its lease lapses) or was lost (none named: to be placed again).
    RECOVERING = "recovering"


class RunState(StrEnum):
    """What the FFmpeg of one placement (a generation) does, as its worker reports it."""

    STARTING = "starting"  # spawned, no media yet
    RUNNING = "running"  # media flowing
    WAITING = "waiting"  # no media: its source is lost, or a listener has no publisher
    RETRYING = "retrying"  # failed; backing off before the next attempt
    FAILED = "failed"  # its retry budget is spent (or it cannot run)
    ENDED = "ended"  # gone: stopped, or fenced


P, R = Phase, RunState

PHASE_TRANSITIONS: TransitionTable[Phase] = TransitionTable(
    "restream phase",
    {
        P.IDLE: {P.PENDING},
        P.PENDING: {P.PLACED, P.IDLE},
        P.PLACED: {P.STOPPING, P.RECOVERING, P.IDLE},  # IDLE: its run failed for good
        P.RECOVERING: {P.PLACED, P.PENDING, P.STOPPING, P.IDLE, P.RECOVERING},
        P.STOPPING: {P.IDLE, P.PENDING},
    },
)

# Within one run; its first report may be any (a spawn can fail before FFmpeg starts).
RUN_TRANSITIONS: TransitionTable[RunState] = TransitionTable(
    "run",
    {
        R.STARTING: {R.RUNNING, R.WAITING, R.RETRYING, R.FAILED, R.ENDED, R.STARTING},
        R.RUNNING: {R.WAITING, R.RETRYING, R.FAILED, R.ENDED, R.STARTING},
        R.WAITING: {R.RUNNING, R.STARTING, R.RETRYING, R.FAILED, R.ENDED},
        R.RETRYING: {R.STARTING, R.WAITING, R.FAILED, R.ENDED},
        R.ENDED: {R.STARTING},  # fenced, then started again on the same node
        R.FAILED: {R.ENDED},  # its node confirms a stop of what had already failed
    },
)

_SHOWN_WHILE_PLACED = {
    None: S.STARTING,  # not reported yet
    R.STARTING: S.STARTING,
    R.RUNNING: S.RUNNING,
    R.WAITING: S.WAITING,
    R.RETRYING: S.RETRYING,
    R.FAILED: S.FAILED,
    R.ENDED: S.STARTING,  # its node starts it again
}
_SHOWN_BY_PHASE = {P.PENDING: S.PENDING, P.STOPPING: S.STOPPING, P.RECOVERING: S.RECOVERING}


def shown(phase: Phase, active: bool, run: RunState | None) -> RestreamState:
    """The state a restream shows: from its run while it is placed; a run that failed for
    good shows FAILED until it is started again or stopped; otherwise its phase."""
    if phase is P.PLACED:
        return _SHOWN_WHILE_PLACED[run]
    if phase is P.IDLE:
        return S.FAILED if active and run is R.FAILED else S.IDLE
    return _SHOWN_BY_PHASE[phase]


def shown_by_run(phase: Phase, active: bool, run: RunState | None) -> bool:
    """Whether the run, not the phase, decides what `shown` says (and why, and since when)."""
    if run is None or run is R.ENDED:
        return False
    return phase is P.PLACED or (phase is P.IDLE and active and run is R.FAILED)


class StateRecords(Protocol):
    """The columns a restream's shown state is made of."""

    @property
    def phase(self) -> Phase: ...
    @property
    def active(self) -> bool: ...
    @property
    def generation(self) -> int: ...
    @property
    def phase_reason(self) -> str | None: ...
    @property
    def phase_changed_at(self) -> datetime: ...
    @property
    def run_state(self) -> RunState | None: ...
    @property
    def run_generation(self) -> int | None: ...
    @property
    def run_reason(self) -> str | None: ...
    @property
    def run_changed_at(self) -> datetime | None: ...


def current_run(records: StateRecords) -> RunState | None:
    """What the FFmpeg of its current placement does (None: nothing reported yet)."""
    return records.run_state if records.run_generation == records.generation else None


class ShowsState:
    """What a restream shows, why and since when, from its two records: for its mapped row
    and for the plain rows a list reads (`common.restreams.repository.Listed`) alike."""

    @property
    def run(self: StateRecords) -> RunState | None:
        return current_run(self)

    @property
    def state(self: StateRecords) -> RestreamState:
        return shown(self.phase, self.active, current_run(self))

    @property
    def state_reason(self: StateRecords) -> str | None:
        if shown_by_run(self.phase, self.active, current_run(self)):
            return self.run_reason
        return self.phase_reason

    @property
    def state_changed_at(self: StateRecords) -> datetime:
        if (
            shown_by_run(self.phase, self.active, current_run(self))
            and self.run_changed_at is not None
        ):
            return max(self.phase_changed_at, self.run_changed_at)
        return self.phase_changed_at


# The moves of the shown state: every change of phase or run must show as one of these
# (checked where its event is recorded), so that what clients see changes only in declared ways.
RESTREAM_TRANSITIONS: TransitionTable[RestreamState] = TransitionTable(
    "restream",
    {
        S.IDLE: {S.PENDING},
        S.PENDING: {S.STARTING, S.IDLE, S.FAILED},
        # A definition change re-places a live restream: back to STARTING, or PENDING when
        # nothing fits the new definition.
        S.STARTING: {
            S.RUNNING,
            S.WAITING,
            S.RETRYING,
            S.FAILED,
            S.STOPPING,
            S.RECOVERING,
            S.STARTING,
            S.PENDING,
        },
        S.RUNNING: {
            S.WAITING,
            S.RETRYING,
            S.FAILED,
            S.STOPPING,
            S.RECOVERING,
            S.STARTING,
            S.PENDING,
        },
        S.WAITING: {
            S.RUNNING,
            S.WAITING,
            S.STARTING,
            S.RETRYING,
            S.FAILED,
            S.STOPPING,
            S.RECOVERING,
            S.PENDING,
        },
        S.RETRYING: {S.STARTING, S.WAITING, S.FAILED, S.STOPPING, S.RECOVERING, S.PENDING},
        S.FAILED: {S.PENDING, S.IDLE},
        # Back to work where it was (its node answers again: its FFmpeg kept running, or starts
        # anew), or placed elsewhere once its node is certainly gone.
        S.RECOVERING: {
            S.STARTING,
            S.RUNNING,
            S.WAITING,
            S.RETRYING,
            S.FAILED,
            S.RECOVERING,
            S.PENDING,
            S.STOPPING,
            S.IDLE,
        },
        S.STOPPING: {S.IDLE, S.PENDING},
    },
)

# Phases in which the node a restream names may still run a copy of it: it holds what it
# reserved there, and runs nowhere else, until that node confirms the copy gone or is lost.
HOLDING_PHASES = frozenset({P.PLACED, P.STOPPING, P.RECOVERING})


class Hold(StrEnum):
    """Why a restream may not run, whatever is asked, until the hold is lifted where it was put:
    a draft, switched off, or (softly) deleted. One that follows a source (INPUT_TYPE_RELAY)
    is held by its source's holds too."""

    DRAFT = "draft"
    DISABLED = "disabled"
    DELETED = "deleted"


class Surface(StrEnum):
    """Which API surface created a restream (it keeps that surface's own words about it)."""

    NATIVE = "native"
    CALLABA = "callaba"
    GJIRAFA = "gjirafa"
    FIVECENTS = "fivecents"


class NodeState(StrEnum):
    ACTIVE = "active"  # takes new restreams
    DRAINING = "draining"  # keeps nothing: its restreams move elsewhere
    OFFLINE = "offline"  # no lease: presumed dead, its restreams were re-placed


N = NodeState

NODE_TRANSITIONS: TransitionTable[NodeState] = TransitionTable(
    "node",
    {
        N.ACTIVE: {N.DRAINING, N.OFFLINE},
        N.DRAINING: {N.ACTIVE, N.OFFLINE},
        N.OFFLINE: {N.ACTIVE, N.DRAINING},
    },
)
