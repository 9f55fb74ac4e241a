"""Drain, undrain and U30 placement on real PostgreSQL and Redis (simulated nodes)."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import select

from common import events
from common.accounts.principal import Principal, Role
from common.celery_app import TASK_RESTREAM_START, TASK_RESTREAM_STOP, node_queue
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import NodeState, RestreamState
from common.errors import Forbidden
from common.ffmpeg.outcome import Outcome
from common.lifecycle import nodes, reports, service
from common.lifecycle.reports import Attempt
from common.models import Node, Restream
from common.outbox import ControlMessage
from tests.support.nodes import ALL_ENCODERS, simulate_node

S = RestreamState
ADMIN = Principal("test", Role.ADMIN, None)
OUT = [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}]
SOFTWARE = RestreamDefinition.model_validate(
    {"input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"}, "outputs": OUT}
)
U30 = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "encoding_rate": 60},
        "transcoding": {"video_transcoding": "mpsoc_vcu_h264"},
        "outputs": OUT,
    }
)


@pytest.fixture
def farm(redis_client: redis.Redis, settings: Settings) -> service.Farm:
    return service.Farm(redis_client, settings)


def rows(db: Database) -> dict[str, Restream]:
    with db.transaction() as session:
        return {r.name: r for r in session.execute(select(Restream)).scalars()}


def test_drain_moves_every_restream_stop_there_then_start_elsewhere(
    db: Database, farm: service.Farm, redis_client: redis.Redis, sent: list[ControlMessage]
) -> None:
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        for name in ("r1", "r2"):
            service.create(session, farm, ADMIN, name, SOFTWARE, active=True)
    simulate_node(db, redis_client, "b", lease=True)
    sent.clear()

    with db.transaction() as session:
        assert nodes.drain(session, ADMIN, "a").state is NodeState.DRAINING
    moving = rows(db)
    assert {r.state for r in moving.values()} == {S.STOPPING}
    assert all(r.active and r.node_name == "a" for r in moving.values())
    assert {(m.task, m.queue) for m in sent} == {(TASK_RESTREAM_STOP, node_queue("a"))}
    sent.clear()

    # The worker on a stops them; each, once gone, is placed on b (never two copies).
    for restream in moving.values():
        with db.transaction() as session:
            left = reports.apply(
                session,
                Attempt(restream.id, restream.generation, "a"),
                reports.Ended(outcome=Outcome.STOPPED, exit_code=0),
            )
            assert left is not None and left.state is S.PENDING
            service.place_now(session, farm, left)
    moved = rows(db)
    assert {(r.state, r.node_name, r.generation) for r in moved.values()} == {(S.STARTING, "b", 2)}
    assert {(m.task, m.queue) for m in sent} == {(TASK_RESTREAM_START, node_queue("b"))}

    with db.transaction() as session:
        assert nodes.undrain(session, ADMIN, "a").state is NodeState.ACTIVE
        history = [(e.to_state, e.reason) for e in events.history(session, events.NODE, "a")]
    assert history == [("draining", "drain requested"), ("active", "undrain requested")]


def test_a_draining_node_takes_no_new_restream(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        nodes.drain(session, ADMIN, "a")
        restream = service.create(session, farm, ADMIN, "r", SOFTWARE, active=True)
    assert restream.state is S.PENDING


def test_nodes_are_for_farm_admins(db: Database, redis_client: redis.Redis) -> None:
    simulate_node(db, redis_client, "a")
    for principal in (
        Principal("p", Role.ADMIN, "some-project"),
        Principal("v", Role.VIEWER, None),
    ):
        with pytest.raises(Forbidden), db.transaction() as session:
            nodes.drain(session, principal, "a")


def test_a_u30_restream_waits_for_a_u30_node_and_is_pinned_to_a_device(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "cpu-only")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "hw", U30, active=True)
    assert restream.state is S.PENDING
    assert restream.state_reason == "no live node's FFmpeg has the encoder mpsoc_vcu_h264"

    simulate_node(
        db, redis_client, "vt1", encoders=(*ALL_ENCODERS, "mpsoc_vcu_h264"), u30_devices=2
    )
    with db.transaction() as session:
        placed = service.start(session, farm, ADMIN, restream.id)
    assert (placed.state, placed.node_name, placed.u30_device) == (S.STARTING, "vt1", 0)
    assert placed.u30_load == {"decoder": 0, "scaler": 0, "encoder": 250_000, "lookahead": 0}


def test_u30_slots_run_out(db: Database, farm: service.Farm, redis_client: redis.Redis) -> None:
    """One device = four 1080p60 slots; the fifth waits, with the numbers."""
    simulate_node(
        db, redis_client, "vt1", encoders=(*ALL_ENCODERS, "mpsoc_vcu_h264"), u30_devices=1
    )
    with db.transaction() as session:
        made = [service.create(session, farm, ADMIN, f"hw{i}", U30, active=True) for i in range(5)]
    assert [r.state for r in made] == [S.STARTING] * 4 + [S.PENDING]
    assert made[4].state_reason == (
        "no node has a free U30 device: need 250000 encoder units, best node has 0 (vt1)"
    )


def test_a_failed_restream_releases_what_it_held(
    db: Database, farm: service.Farm, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", SOFTWARE, active=True)
        assert restream.reserved_millicores > 0
    with db.transaction() as session:
        reports.apply(
            session,
            Attempt(restream.id, 1, "a"),
            reports.Failed(error="x", stderr_tail=[], exit_code=1, reason="r"),
        )
    failed = rows(db)["r"]
    assert (failed.node_name, failed.reserved_millicores) == (None, 0)


def test_a_worker_registering_again_comes_back_but_a_drained_one_stays_drained(
    db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "a")
    simulate_node(db, redis_client, "b")
    with db.transaction() as session:
        node_a = session.get(Node, "a")
        assert node_a is not None
        nodes.transition(session, node_a, NodeState.OFFLINE, "test")
        nodes.drain(session, ADMIN, "b")
    simulate_node(db, redis_client, "a")
    simulate_node(db, redis_client, "b")
    with db.transaction() as session:
        states = {n.name: n.state for n in session.execute(select(Node)).scalars()}
    assert states == {"a": NodeState.ACTIVE, "b": NodeState.DRAINING}
