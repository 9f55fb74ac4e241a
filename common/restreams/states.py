"""The observed states of a restream and the transitions between them (DESIGN §2)."""

from __future__ import annotations

from enum import StrEnum

from common.transitions import TransitionTable


class RestreamState(StrEnum):
    IDLE = "idle"  # not wanted, nothing runs
    PENDING = "pending"  # wanted, waiting for a node that fits
    STARTING = "starting"  # assigned, FFmpeg spawned (or about to be), no progress yet
    RUNNING = "running"  # progress advancing
    RETRYING = "retrying"  # FFmpeg exited or stalled; backing off before a restart
    FAILED = "failed"  # retry budget spent or permanent error; waits for a new start
    RECOVERING = "recovering"  # its node was lost; being placed elsewhere
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
            S.RETRYING,
            S.FAILED,
            S.STOPPING,
            S.RECOVERING,
            S.STARTING,
            S.PENDING,
        },
        S.RUNNING: {S.RETRYING, S.FAILED, S.STOPPING, S.RECOVERING, S.STARTING, S.PENDING},
        S.RETRYING: {S.STARTING, S.FAILED, S.STOPPING, S.RECOVERING, S.PENDING},
        S.FAILED: {S.PENDING, S.IDLE},
        S.RECOVERING: {S.STARTING, S.PENDING, S.IDLE},
        S.STOPPING: {S.IDLE, S.PENDING},
    },
)

# States in which a node is expected to run the restream's FFmpeg.
PLACED_STATES = frozenset({S.STARTING, S.RUNNING, S.RETRYING})
# States in which the restream wants a node but has none.
UNPLACED_WANTED_STATES = frozenset({S.PENDING, S.RECOVERING})
