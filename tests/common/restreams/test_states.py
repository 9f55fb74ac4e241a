"""The declared transition tables."""

from __future__ import annotations

import pytest

from common.errors import IllegalTransition
from common.nodes.states import NODE_TRANSITIONS, NodeState
from common.restreams.states import RESTREAM_TRANSITIONS, RestreamState

S = RestreamState

LEGAL = [
    (S.IDLE, S.PENDING),
    (S.PENDING, S.STARTING),
    (S.STARTING, S.RUNNING),
    (S.RUNNING, S.RETRYING),
    (S.RETRYING, S.STARTING),
    (S.RETRYING, S.FAILED),
    (S.FAILED, S.PENDING),
    (S.RUNNING, S.RECOVERING),
    (S.RECOVERING, S.STARTING),
    (S.RUNNING, S.STOPPING),
    (S.STOPPING, S.IDLE),
    (S.PENDING, S.IDLE),
]
ILLEGAL = [
    (S.IDLE, S.RUNNING),  # nothing runs without being placed first
    (S.IDLE, S.STARTING),
    (S.FAILED, S.RUNNING),  # a failed restream waits for a new start
    (S.STOPPING, S.RUNNING),
    (S.IDLE, S.STOPPING),
    (S.RETRYING, S.RUNNING),  # a restart goes through STARTING
]


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_legal(source: RestreamState, target: RestreamState) -> None:
    RESTREAM_TRANSITIONS.check(source, target)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_illegal_is_an_error(source: RestreamState, target: RestreamState) -> None:
    with pytest.raises(IllegalTransition, match=f"from {source.value} to {target.value}"):
        RESTREAM_TRANSITIONS.check(source, target)


def test_every_state_can_reach_idle() -> None:
    """No state is a trap: from anywhere, some path leads back to rest."""
    for state in RestreamState:
        seen, frontier = {state}, [state]
        while frontier:
            current = frontier.pop()
            for target in RestreamState:
                if RESTREAM_TRANSITIONS.allows(current, target) and target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert S.IDLE in seen, state


def test_sources_of() -> None:
    assert RESTREAM_TRANSITIONS.sources_of(S.IDLE) == {
        S.PENDING,
        S.FAILED,
        S.RECOVERING,
        S.STOPPING,
    }


def test_node_transitions() -> None:
    NODE_TRANSITIONS.check(NodeState.ACTIVE, NodeState.OFFLINE)
    NODE_TRANSITIONS.check(NodeState.OFFLINE, NodeState.ACTIVE)
    with pytest.raises(IllegalTransition):
        NODE_TRANSITIONS.check(NodeState.ACTIVE, NodeState.ACTIVE)
