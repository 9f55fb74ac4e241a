"""Concurrent starts on real PostgreSQL: the placement lock keeps every node within capacity."""

from __future__ import annotations

import threading

import pytest
import redis
from sqlalchemy import select

from common.accounts.principal import Principal, Role
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import RestreamState
from common.lifecycle import service
from common.models import Restream
from common.nodes.capabilities import requirements
from tests.support.nodes import simulate_node

ADMIN = Principal("test", Role.ADMIN, None)
DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)
STARTS = 8


# A race shows only sometimes: several rounds make an overbooking bug all but certain to show.
@pytest.mark.parametrize("round_", range(3))
def test_concurrent_starts_never_overbook_a_node(
    committing_db: Database, redis_client: redis.Redis, settings: Settings, round_: int
) -> None:
    db = committing_db
    farm = service.Farm(redis_client, settings)
    cost = requirements(DEFINITION).cost.cpu_millicores
    simulate_node(db, redis_client, "small", millicores=2 * cost + cost // 2)  # room for two
    with db.transaction() as session:
        ids = [
            service.create(session, farm, ADMIN, f"r{i}", DEFINITION, active=False).id
            for i in range(STARTS)
        ]
    gate = threading.Barrier(STARTS)
    errors: list[BaseException] = []

    def start(restream_id: str) -> None:
        try:
            gate.wait()
            with db.transaction() as session:
                service.start(session, farm, ADMIN, restream_id)
        except BaseException as error:  # reported below, with the others
            errors.append(error)

    threads = [threading.Thread(target=start, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []

    with db.transaction() as session:
        rows = session.execute(select(Restream)).scalars().all()
    placed = [r for r in rows if r.state is RestreamState.STARTING]
    waiting = [r for r in rows if r.state is RestreamState.PENDING]
    assert len(placed) == 2
    assert sum(r.reserved_millicores for r in placed) <= 2 * cost + cost // 2
    assert len(waiting) == STARTS - 2
    assert all(r.state_reason and r.state_reason.startswith("not enough free CPU") for r in waiting)
