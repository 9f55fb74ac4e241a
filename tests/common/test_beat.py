"""The reconciler's beat: rounds in its own process, one per interval, until it is told to
stop."""

from __future__ import annotations

import json
import threading
import time

import redis

from common import live
from common.accounts.principal import Principal, Role
from common.celery_app import TASK_RESTREAM_START, node_queue
from common.cli.beat import run_beat
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import RestreamState
from common.lifecycle import service
from common.models import Restream
from tests.support.nodes import simulate_node

DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)


def test_the_beat_places_what_waits_for_a_node_and_sends_its_start(
    committing_db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    live.remember_since(redis_client, 60)  # Redis has kept the farm's leases for a while
    farm = service.Farm(redis_client, settings)
    with committing_db.transaction() as session:
        restream = service.create(
            session, farm, Principal("t", Role.ADMIN, None), "r", DEFINITION, active=True
        )
    assert restream.state is RestreamState.PENDING  # no node yet
    simulate_node(committing_db, redis_client, "late")
    redis_client.delete(node_queue("late"))

    stopping = threading.Event()
    quick = settings.model_copy(update={"reconcile_interval_s": 0.1})
    beat = threading.Thread(target=run_beat, args=(quick, stopping))
    beat.start()
    try:
        deadline = time.monotonic() + 5
        while redis_client.llen(node_queue("late")) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stopping.set()
        beat.join(5)
    assert not beat.is_alive()  # stops when told, mid-interval

    with committing_db.transaction() as session:
        placed = session.get(Restream, restream.id)
        assert placed is not None
        assert (placed.state, placed.node_name) == (RestreamState.STARTING, "late")
    messages = [json.loads(m) for m in redis_client.lrange(node_queue("late"), 0, -1)]
    assert messages[-1]["headers"]["task"] == TASK_RESTREAM_START  # a real Celery message
