"""The retry policy, as a table: what each failure leads to."""

from __future__ import annotations

import pytest

from worker.retry import RetryPolicy, Verdict

POLICY = RetryPolicy(
    budget=3, window_s=60.0, backoff_initial_s=0.5, backoff_max_s=3.0, source_retry_max_s=2.0
)


@pytest.mark.parametrize(
    ("earlier", "now", "verdict"),
    [
        ((), 100.0, Verdict((100.0,), 0.5)),  # the first failure: the first pause
        ((100.0,), 101.0, Verdict((100.0, 101.0), 1.0)),  # the pause doubles
        ((100.0, 101.0), 102.0, Verdict((100.0, 101.0, 102.0), None)),  # the budget is spent
        ((10.0, 20.0), 100.0, Verdict((100.0,), 0.5)),  # old failures no longer count
        ((40.0, 41.0), 100.5, Verdict((41.0, 100.5), 1.0)),  # one still within the window
    ],
)
def test_a_failure_leads_to_a_pause_or_to_giving_up(
    earlier: tuple[float, ...], now: float, verdict: Verdict
) -> None:
    assert POLICY.after_failure(earlier, now) == verdict


def test_pauses_stop_growing_at_the_ceiling() -> None:
    roomy = RetryPolicy(20, 60.0, 0.5, 3.0, 2.0)
    pauses = []
    failures: tuple[float, ...] = ()
    for moment in range(8):
        verdict = roomy.after_failure(failures, float(moment))
        failures = verdict.failures
        pauses.append(verdict.pause_s)
    assert pauses == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize(("losses", "pause_s"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 2.0), (50, 2.0)])
def test_a_lost_source_is_tried_again_ever_after(losses: int, pause_s: float) -> None:
    assert POLICY.source_pause_s(losses) == pause_s
