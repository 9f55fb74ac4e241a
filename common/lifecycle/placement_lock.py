"""The farm-wide placement lock: whoever hands out node capacity or ports holds it, one at a
time (the API placing a restream now, the reconciler's round, servers, Gjirafa's ports)."""

from __future__ import annotations

import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.errors import BackendUnavailable

PLACEMENT_LOCK_ID = 0x73_6670_6C61_6365  # any 64-bit constant: "sfplace"

_TRY_PLACEMENT_LOCK = select(func.pg_try_advisory_xact_lock(PLACEMENT_LOCK_ID))
PLACEMENT_LOCK_WAIT_S = 30.0


def lock_placement(session: Session) -> None:
    """Serialise placements farm-wide until this transaction ends.

    Whoever places reads every node's holdings after taking this lock, and the holdings of
    the previous holder were committed before it was released: no two placements can both
    count the same free capacity (or the same free port), so no node is ever overbooked.
    """
    # Tried rather than waited for: a wait is one statement, which a burst of placements would
    # make outlast the statement timeout (each placement holds the lock a few milliseconds).
    deadline = time.monotonic() + PLACEMENT_LOCK_WAIT_S
    pause_s = 0.002
    while not session.execute(_TRY_PLACEMENT_LOCK).scalar_one():
        if time.monotonic() > deadline:
            raise BackendUnavailable("busy: too many placements at once", retry_after_s=1)
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.02)
