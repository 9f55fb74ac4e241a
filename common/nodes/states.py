"""The states of a worker node and the transitions between them (DESIGN §4)."""

from __future__ import annotations

from enum import StrEnum

from common.transitions import TransitionTable


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
