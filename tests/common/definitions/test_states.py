"""The declared transition tables."""

from __future__ import annotations

import itertools

import pytest

from common.definitions.states import (
    NODE_TRANSITIONS,
    RESTREAM_TRANSITIONS,
    NodeState,
    RestreamState,
)
from common.errors import IllegalTransition

S = RestreamState

# What the farm makes a restream live through, step by step: every step must be allowed. A
# change to the table that breaks one of these breaks a path the code takes.
JOURNEYS = {
    "started, run, stopped": [S.IDLE, S.PENDING, S.STARTING, S.RUNNING, S.STOPPING, S.IDLE],
    "stopped while waiting for a node": [S.IDLE, S.PENDING, S.IDLE],
    "a crash, restarted": [S.RUNNING, S.RETRYING, S.STARTING, S.RUNNING],
    "the retry budget spent": [S.RUNNING, S.RETRYING, S.FAILED, S.PENDING],
    "a failed one stopped": [S.FAILED, S.IDLE],
    "its source lost and back": [S.RUNNING, S.WAITING, S.RUNNING],
    "its source lost at the start": [S.STARTING, S.WAITING, S.RUNNING],
    "a listener waits for its publisher": [S.STARTING, S.WAITING, S.RUNNING, S.STARTING],
    "its node lost, placed elsewhere": [S.RUNNING, S.RECOVERING, S.RECOVERING, S.STARTING],
    "its node silent, then back": [S.RUNNING, S.RECOVERING, S.RUNNING],
    "fenced, then started again there": [S.WAITING, S.RECOVERING, S.STARTING, S.RUNNING],
    "stopped while its node is silent": [S.RECOVERING, S.STOPPING, S.IDLE],
    "moved off a draining node": [S.RUNNING, S.STOPPING, S.PENDING, S.STARTING],
    "its definition changed": [S.RUNNING, S.STOPPING, S.PENDING],
    "nothing fits its new definition": [S.STARTING, S.PENDING],
}


ILLEGAL = [
    (S.IDLE, S.RUNNING),  # nothing runs without being placed first
    (S.IDLE, S.STARTING),
    (S.FAILED, S.RUNNING),  # a failed restream waits for a new start
    (S.STOPPING, S.RUNNING),
    (S.IDLE, S.STOPPING),
    (S.RETRYING, S.RUNNING),  # a restart goes through STARTING
]


@pytest.mark.parametrize("journey", JOURNEYS.values(), ids=list(JOURNEYS))
def test_what_a_restream_lives_through_is_allowed(journey: list[RestreamState]) -> None:
    for source, target in itertools.pairwise(journey):
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
