"""Poll until a condition holds, with a deadline. Never sleep and hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout_s: float = 10.0,
    every_s: float = 0.02,
    what: str = "",
) -> T:
    """Call `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as error:  # the thing polled may not be ready yet
            last_error = error
        else:
            if value:
                return value
        time.sleep(every_s)
    raise AssertionError(
        f"timed out after {timeout_s} s waiting for {what or condition}"
        + (f" (last error: {last_error!r})" if last_error else "")
    )
