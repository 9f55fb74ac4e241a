"""Restream SQL with concurrent transactions, on real PostgreSQL."""

from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import func, select, text, update

from common.accounts.principal import Principal, Role
from common.config import Settings
from common.db import Database, database_now
from common.definitions.restream import RestreamDefinition
from common.lifecycle import service
from common.models import Restream
from common.restreams import repository
from tests.support.wait import wait_for

ADMIN = Principal("test", Role.ADMIN, None)
DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)


def _waiting_for_a_lock(db: Database) -> bool:
    with db.reading() as session:
        waiting = session.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)


@pytest.mark.parametrize("holder_changes_it", [False, True])
def test_lock_reads_the_clock_and_the_row_once_the_lock_is_held(
    committing_db: Database, redis_client: redis.Redis, settings: Settings, holder_changes_it: bool
) -> None:
    """A transaction that waited for another's lock takes its time after the wait (its
    changes are never dated before the ones it waited for), whether or not the other changed
    the row, and sees what the other wrote."""
    db = committing_db
    farm = service.Farm(redis_client, settings)
    with db.transaction() as session:
        restream_id = service.create(session, farm, ADMIN, "locked", DEFINITION, active=False).id
    holding = threading.Event()
    waited: dict[str, object] = {}

    def wait_for_the_lock() -> None:
        holding.wait(5)
        with db.transaction() as session:
            restream = repository.lock(session, restream_id, None)
            assert restream is not None
            waited["name"], waited["now"] = restream.name, database_now(session)

    other = threading.Thread(target=wait_for_the_lock)
    other.start()
    with db.transaction() as session:
        assert repository.lock(session, restream_id, None) is not None
        holding.set()
        wait_for(lambda: _waiting_for_a_lock(db), timeout_s=10, what="the other to wait")
        if holder_changes_it:
            renamed = update(Restream).where(Restream.id == restream_id).values(name="renamed")
            session.execute(renamed)
        released = session.execute(select(func.clock_timestamp())).scalar_one()
    other.join(10)
    assert waited["name"] == ("renamed" if holder_changes_it else "locked")
    assert waited["now"] >= released
