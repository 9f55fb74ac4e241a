"""A job's own states (what its process does): declared, and moved only as declared."""

from __future__ import annotations

import itertools

import pytest

from common.errors import IllegalTransition
from worker.job import JOB_TRANSITIONS, JobState

J = JobState


@pytest.mark.parametrize(
    "journey",
    [
        [J.STARTING, J.RUNNING, J.WAITING, J.RUNNING, J.RETRYING, J.STARTING],  # lost, crashed
        [J.STARTING, J.WAITING, J.RETRYING, J.STARTING, J.RUNNING],  # a source broken, then ok
        [J.STARTING, J.WAITING, J.RUNNING, J.STARTING],  # a publisher came, left: listen again
        [J.STARTING, J.STARTING],  # a publisher with the wrong key hung up on
    ],
)
def test_what_a_job_lives_through_is_declared(journey: list[JobState]) -> None:
    for source, target in itertools.pairwise(journey):
        JOB_TRANSITIONS.check(source, target)


def test_a_retry_starts_before_it_runs() -> None:
    with pytest.raises(IllegalTransition):
        JOB_TRANSITIONS.check(J.RETRYING, J.RUNNING)
