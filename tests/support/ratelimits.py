"""Rounds of requests against a sliding-window rate limiter, judged only when they fit in it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest
import redis

R = TypeVar("R")
ROUNDS = 5


def within_one_window(
    send: Callable[[int], R],
    count: int,
    *,
    window_s: float,
    client: redis.Redis,
    prefix: str,
    what: str,
) -> list[R]:
    """`send(0)` … `send(count - 1)`, all sent within 0.9 of the limiter's window. On a busy
    machine a round can take longer: its first requests' counts expire before the last is
    sent, and the round tells nothing. It is sent again then, from no count (the limiter's
    keys under `prefix` deleted), up to `ROUNDS` times."""
    for _ in range(ROUNDS):
        started = time.monotonic()
        answers = [send(n) for n in range(count)]
        if time.monotonic() - started < 0.9 * window_s:
            return answers
        for counts in client.scan_iter(f"{prefix}:*"):
            client.delete(counts)
    pytest.fail(f"{what}: no round of {count} requests within {window_s:g} s in {ROUNDS} tries")
