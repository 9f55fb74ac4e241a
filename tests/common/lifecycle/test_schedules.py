"""Schedules on real PostgreSQL and Redis (simulated nodes): kept in the row, carried out by the
reconciler's rounds through the same commands as any start or stop."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import redis
from sqlalchemy import select

from common import events
from common.accounts.principal import Principal, Role
from common.config import Settings
from common.db import Database, database_now
from common.definitions.restream import RestreamDefinition
from common.definitions.schedule import Schedule
from common.definitions.states import Hold, RestreamState
from common.errors import InvalidInput
from common.lifecycle import schedules, service
from common.models import Restream
from common.reconcile.run import reconcile
from tests.support.nodes import simulate_node

S = RestreamState
ADMIN = Principal("test", Role.ADMIN, None)
DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)


@pytest.fixture
def farm(redis_client: redis.Redis, settings: Settings) -> service.Farm:
    return service.Farm(redis_client, settings)


def now_of(db: Database) -> datetime:
    with db.transaction() as session:
        return database_now(session)


def create(db: Database, farm: service.Farm, name: str, **schedule: object) -> str:
    with db.transaction() as session:
        made = service.create(
            session,
            farm,
            ADMIN,
            name,
            DEFINITION,
            active=False,
            schedule=Schedule.model_validate(schedule) if schedule else None,
        )
        return made.id


def row(db: Database, restream_id: str) -> Restream:
    with db.transaction() as session:
        found = session.get(Restream, restream_id)
        assert found is not None
        return found


def make_due(db: Database, restream_id: str, **times: datetime) -> None:
    """Move a kept time into the past, as the clock would."""
    with db.transaction() as session:
        found = session.get(Restream, restream_id)
        assert found is not None
        for name, value in times.items():
            setattr(found, name, value)


def carry_out(db: Database) -> tuple[dict[str, int], float | None]:
    with db.transaction() as session:
        return schedules.carry_out(session)


def reasons(db: Database, restream_id: str) -> list[str]:
    with db.transaction() as session:
        return [e.reason for e in events.history(session, events.RESTREAM, restream_id)]


def test_a_time_in_the_past_is_refused_naming_its_field(db: Database, farm: service.Farm) -> None:
    past = now_of(db) - timedelta(minutes=1)
    with pytest.raises(InvalidInput) as refused:
        create(db, farm, "late", start_at=past.isoformat())
    assert [p.field for p in refused.value.problems] == ["schedule.start_at"]
    assert "is in the past" in refused.value.problems[0].message
    with db.transaction() as session:
        assert session.execute(select(Restream)).first() is None  # nothing written


def test_a_start_time_starts_it_and_its_duration_stops_it(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1")
    start = now_of(db) + timedelta(hours=1)
    rid = create(db, farm, "show", start_at=start.isoformat(), duration_s=600)
    kept = row(db, rid)
    assert (kept.start_at, kept.stop_at, kept.run_for_s, kept.active) == (start, None, 600, False)
    done, next_due_s = carry_out(db)
    assert done == {"ScheduledStart": 0, "ScheduledStop": 0}
    assert next_due_s is not None and 3590 < next_due_s <= 3600

    make_due(db, rid, start_at=now_of(db) - timedelta(seconds=1))
    done, _ = carry_out(db)
    started = row(db, rid)
    assert done["ScheduledStart"] == 1
    assert started.active and started.state is S.PENDING and started.start_at is None
    assert started.stop_at is not None  # this run lasts 600 s
    assert 595 < (started.stop_at - now_of(db)).total_seconds() <= 600
    assert reasons(db, rid)[-1] == "started by its schedule"

    make_due(db, rid, stop_at=now_of(db) - timedelta(seconds=1))
    done, next_due_s = carry_out(db)
    stopped = row(db, rid)
    assert done["ScheduledStop"] == 1 and next_due_s is None
    assert not stopped.active and stopped.state is S.IDLE and stopped.stop_at is None
    assert reasons(db, rid)[-1] == "stopped by its schedule (its runs last at most 600 s)"
    assert stopped.run_for_s == 600  # kept for the next run


def test_the_reconciler_places_what_its_schedule_started_in_the_same_round(
    db: Database, farm: service.Farm, redis_client: redis.Redis, settings: Settings
) -> None:
    simulate_node(db, redis_client, "n1", lease=True)
    rid = create(db, farm, "on-time", start_at=(now_of(db) + timedelta(hours=1)).isoformat())
    make_due(db, rid, start_at=now_of(db))
    summary = reconcile(db, redis_client, settings)
    assert summary.actions.get("ScheduledStart") == 1
    placed = row(db, rid)
    assert placed.state is S.STARTING and placed.node_name == "n1"


def test_any_stop_uses_up_the_stop_time_and_each_start_sets_its_own(
    db: Database, farm: service.Farm
) -> None:
    rid = create(db, farm, "manual", duration_s=60)
    with db.transaction() as session:
        service.start(session, farm, ADMIN, rid)
    first = row(db, rid).stop_at
    assert first is not None
    with db.transaction() as session:
        service.stop(session, ADMIN, rid)
    assert row(db, rid).stop_at is None  # the run it was for ended
    with db.transaction() as session:
        service.start(session, farm, ADMIN, rid)
        service.start(session, farm, ADMIN, rid)  # started already: its stop time stays
    second = row(db, rid).stop_at
    assert second is not None and second > first


def test_a_held_restream_or_a_missed_run_is_not_started(db: Database, farm: service.Farm) -> None:
    now = now_of(db)
    held = create(db, farm, "held", start_at=(now + timedelta(hours=1)).isoformat())
    with db.transaction() as session:
        service.update(
            session, farm, ADMIN, held, service.Changes(holds=frozenset({Hold.DISABLED}))
        )
    make_due(db, held, start_at=now - timedelta(seconds=1))
    missed = create(
        db,
        farm,
        "missed",
        start_at=(now + timedelta(hours=1)).isoformat(),
        stop_at=(now + timedelta(hours=2)).isoformat(),
    )  # the reconciler was away for its whole window:
    make_due(db, missed, start_at=now - timedelta(hours=2), stop_at=now - timedelta(hours=1))
    done, next_due_s = carry_out(db)
    assert done == {"ScheduledStart": 0, "ScheduledStop": 1} and next_due_s is None
    for rid in (held, missed):
        kept = row(db, rid)
        assert not kept.active and kept.start_at is None and kept.stop_at is None
    assert reasons(db, held)[-1].startswith("not started by its schedule: restream")
    assert "passed while no reconciler ran" in reasons(db, missed)[-1]
