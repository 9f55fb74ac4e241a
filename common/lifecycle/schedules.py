"""Schedules: what a restream's `start_at`, `stop_at` and `run_for_s` make the control plane do.

A client's schedule is checked against PostgreSQL's clock (`assign`: a time in the past is
refused naming its field) and kept in the restream's row. The reconciler carries it out in
every round (`carry_out`): it starts what is due and stops what is due through `commands`,
like any other start or stop, and says when the next time comes so that its loop wakes right
then. The times live in PostgreSQL, so a restarted API or reconciler loses none; one missed
while no reconciler ran is carried out at the next round. `start_at` and `stop_at` are each
used once; `run_for_s` holds for every run (each start sets `stop_at` that far ahead, see
`commands.want_running`), and any stop uses up `stop_at`.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from common import events
from common.db import database_now, keep_database_now
from common.definitions.schedule import Schedule, ScheduleView
from common.errors import FieldProblem, InvalidInput
from common.lifecycle import commands
from common.models import Restream
from common.restreams.repository import Listed

# The soonest time a schedule sets (None: none is set).
_NEXT_TIME = func.least(func.min(Restream.start_at), func.min(Restream.stop_at))


def assign(
    session: Session, restream: Restream, schedule: Schedule | None, *, field: str = "schedule"
) -> None:
    """Give the restream `schedule` (None: none). A running restream given a duration stops
    that long from now."""
    if schedule is None:
        restream.start_at = restream.stop_at = restream.run_for_s = None
        return
    now = database_now(session)
    past = schedule.past(now)
    if past:
        problems = [FieldProblem(f"{field}.{name}", message) for name, message in past.items()]
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise InvalidInput(f"invalid schedule: {summary}", problems)
    restream.start_at = schedule.start_at
    restream.stop_at = schedule.stop_at
    restream.run_for_s = schedule.duration_s
    if restream.active and schedule.duration_s:
        restream.stop_at = now + timedelta(seconds=schedule.duration_s)


def of(restream: Restream | Listed) -> ScheduleView | None:
    """The restream's schedule as it stands (what is left of it), or None."""
    if restream.start_at is None and restream.stop_at is None and restream.run_for_s is None:
        return None
    return ScheduleView(
        start_at=restream.start_at, stop_at=restream.stop_at, duration_s=restream.run_for_s
    )


def carry_out(session: Session) -> tuple[dict[str, int], float | None]:
    """Start and stop what is due now: how many of each, and the seconds until the next time
    (None: no time is set). Rows another transaction holds are left for the next round. At
    rest (nothing due), one statement: the next time and the clock."""
    done = {"ScheduledStart": 0, "ScheduledStop": 0}
    nearest, clock = session.execute(select(_NEXT_TIME, func.clock_timestamp())).one()
    keep_database_now(session, clock)
    now = database_now(session)
    if nearest is None or nearest > now:
        return done, None if nearest is None else (nearest - now).total_seconds()
    due = (
        session.execute(
            select(Restream)
            .where(or_(Restream.start_at <= now, Restream.stop_at <= now))
            .order_by(Restream.id)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for restream in due:
        stop_at, start_at = restream.stop_at, restream.start_at
        if stop_at is not None and stop_at <= now:
            reason = "stopped by its schedule"
            if restream.run_for_s:
                reason += f" (its runs last at most {restream.run_for_s} s)"
            commands.want_stopped(session, restream, reason)  # uses up stop_at
            done["ScheduledStop"] += 1
        if start_at is not None and start_at <= now:
            restream.start_at = None
            skipped = commands.held_reason(session, restream)
            if skipped is None and stop_at is not None and start_at < stop_at <= now:
                skipped = f"its run from {start_at} to {stop_at} passed while no reconciler ran"
            if skipped is None:
                commands.want_running(session, restream, "started by its schedule")
                done["ScheduledStart"] += 1
            else:
                events.record(
                    session,
                    subject_kind=events.RESTREAM,
                    subject_id=restream.id,
                    reason=f"not started by its schedule: {skipped}",
                    project_id=restream.project_id,
                )
    session.flush()  # the round's plan reads the rows with SQL: it sees these changes
    upcoming = session.execute(select(_NEXT_TIME)).scalar_one()
    return done, None if upcoming is None else max(0.0, (upcoming - now).total_seconds())
