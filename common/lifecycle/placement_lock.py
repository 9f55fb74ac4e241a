"""The farm-wide placement lock: whoever hands out node capacity or ports holds it, one at a
time (the API placing a restream now, the reconciler's round, servers, Gjirafa's ports)."""

from __future__ import annotations

import time

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from common.errors import BackendUnavailable

PLACEMENT_LOCK_ID = 0x73_6670_6C61_6365  # any 64-bit constant: "sfplace"

_TRY_PLACEMENT_LOCK = select(func.pg_try_advisory_xact_lock(PLACEMENT_LOCK_ID))
# A wait in PostgreSQL's queue for the lock, of at most `wait` (its `lock_timeout`, set for
# this statement alone: the value before is set again once the lock is held). The inner
# select's columns are worked out in order, and it is not merged into the outer one (its
# functions are volatile).
_WAIT_FOR_PLACEMENT_LOCK = text(
    "SELECT set_config('lock_timeout', waited.prior, true) FROM ("
    "SELECT current_setting('lock_timeout') AS prior,"
    " set_config('lock_timeout', :wait, true) AS waiting,"
    " pg_advisory_xact_lock(:lock_id) AS held) AS waited"
)
PLACEMENT_LOCK_WAIT_S = 30.0
WAIT_SLICE_S = 1.0  # one wait's longest: well within a statement's timeout
_TIMED_OUT = {"55P03", "57014"}  # lock_not_available, query_canceled (a statement timeout)


def lock_placement(session: Session) -> None:
    """Serialise placements farm-wide until this transaction ends.

    Whoever places reads every node's holdings after taking this lock, and the holdings of
    the previous holder were committed before it was released: no two placements can both
    count the same free capacity (or the same free port), so no node is ever overbooked.
    """
    if session.execute(_TRY_PLACEMENT_LOCK).scalar_one():
        return
    # Held: wait in PostgreSQL's queue, which hands the lock over the moment it is released,
    # first come first served. Waited for in slices, each in a savepoint (a lock or statement
    # timeout aborts what it ran in): one wait as long as a burst of placements would outlast
    # the statement timeout.
    deadline = time.monotonic() + PLACEMENT_LOCK_WAIT_S
    while True:
        wait_ms = round(min(WAIT_SLICE_S, max(deadline - time.monotonic(), 0.001)) * 1000)
        try:
            with session.begin_nested():
                session.execute(
                    _WAIT_FOR_PLACEMENT_LOCK,
                    {"wait": f"{wait_ms}ms", "lock_id": PLACEMENT_LOCK_ID},
                )
            return
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) not in _TIMED_OUT:
                raise
        if time.monotonic() >= deadline:
            raise BackendUnavailable("busy: too many placements at once", retry_after_s=1)
