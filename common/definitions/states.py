"""The states of restreams and of worker nodes, and the transitions between them (DESIGN §2,
§4): one declared table each; an undeclared move is an error."""

from __future__ import annotations

from enum import StrEnum

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
            S.RECOVERING,
            S.PENDING,
            S.STOPPING,
            S.IDLE,
        },
        S.STOPPING: {S.IDLE, S.PENDING},
    },
)

# States in which a node is expected to run the restream's FFmpeg.
PLACED_STATES = frozenset({S.STARTING, S.RUNNING, S.WAITING, S.RETRYING})
# States in which the node a restream names may still run a copy of it: it holds what it
# reserved there, and runs nowhere else, until that node confirms the copy gone or is lost.
HOLDING_STATES = frozenset({*PLACED_STATES, S.STOPPING, S.RECOVERING})
# States in which the restream wants a node but has none.
UNPLACED_WANTED_STATES = frozenset({S.PENDING, S.RECOVERING})


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
