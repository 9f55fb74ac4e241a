"""When a job tries again, and when it gives up: a pure policy, with table tests
(tests/worker/test_retry.py). Jitter is the caller's: the policy gives the plain pause."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    """After one failure: the failures that count now (within the window, this one last) and
    the pause before the next attempt; no pause: the retry budget is spent."""

    failures: tuple[float, ...]
    pause_s: float | None


@dataclass(frozen=True)
class RetryPolicy:
    budget: int  # failures within the window that end the job (FAILED)
    window_s: float
    backoff_initial_s: float  # the first pause; it doubles with each failure that counts
    backoff_max_s: float
    source_retry_max_s: float  # the longest pause before trying a lost source again

    def after_failure(self, earlier: Sequence[float], now: float) -> Verdict:
        """A failure at `now`, after those at `earlier` (monotonic seconds)."""
        counted = (*(t for t in earlier if now - t <= self.window_s), now)
        if len(counted) >= self.budget:
            return Verdict(counted, None)
        return Verdict(counted, self._doubling(len(counted) - 1, self.backoff_max_s))

    def source_pause_s(self, losses: int) -> float:
        """The pause after the `losses`-th attempt in a row that found the source not there:
        not a failure, so no budget; it grows to `source_retry_max_s` and stays there."""
        return self._doubling(losses - 1, self.source_retry_max_s)

    def _doubling(self, exponent: int, ceiling: float) -> float:
        return min(ceiling, self.backoff_initial_s * 2.0**exponent)
