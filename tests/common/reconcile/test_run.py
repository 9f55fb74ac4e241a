"""A reconcile round on real PostgreSQL and Redis, with simulated nodes."""

from __future__ import annotations

import pytest
import redis
from sqlalchemy import Engine, select, text

from common import live
from common.accounts.principal import Principal, Role
from common.celery_app import TASK_NODE_SYNC, TASK_RESTREAM_START, node_queue
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import NodeState, Phase, RestreamState
from common.ffmpeg.outcome import Outcome
from common.lifecycle import nodes as node_service
from common.lifecycle import reports, service
from common.lifecycle.reports import Attempt
from common.models import Event, Node, Restream
from common.outbox import ControlMessage
from common.reconcile import run
from common.reconcile.plan import MarkNodeActive
from common.reconcile.run import RECONCILE_LOCK_ID, reconcile
from tests.support.nodes import renew, simulate_node

S = RestreamState
ADMIN = Principal("test", Role.ADMIN, None)


@pytest.fixture(autouse=True)
def redis_remembers(redis_client: redis.Redis) -> None:
    """Redis has kept the farm's leases for a while (see the last test)."""
    live.remember_since(redis_client, 60)


DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)


def test_a_lost_node_is_marked_offline_and_its_restream_runs_elsewhere(
    db: Database, redis_client: redis.Redis, settings: Settings, sent: list[ControlMessage]
) -> None:
    farm = service.Farm(redis_client, settings)
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", DEFINITION, active=True)
    with db.transaction() as session:
        reports.apply(session, Attempt(restream.id, 1, "a"), reports.Running())
    simulate_node(db, redis_client, "b")
    redis_client.delete("streamfleet:lease:a")  # a stops renewing
    sent.clear()

    summary = reconcile(db, redis_client, settings)

    assert summary.ran
    assert summary.actions == {"MarkNodeOffline": 1, "Recover": 1, "Assign": 1, "Sync": 1}
    with db.transaction() as session:
        moved = session.get(Restream, restream.id)
        node_a = session.get(Node, "a")
        assert moved is not None and node_a is not None
        assert (moved.state, moved.node_name, moved.generation) == (S.STARTING, "b", 2)
        assert node_a.state is NodeState.OFFLINE
    assert sent == [
        ControlMessage(
            TASK_RESTREAM_START, node_queue("b"), {"restream_id": restream.id, "generation": 2}
        ),
        ControlMessage(TASK_NODE_SYNC, node_queue("b"), {"node": "b", "desired": {restream.id: 2}}),
    ]


def test_a_pending_restream_is_placed_once_a_node_appears(
    db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    farm = service.Farm(redis_client, settings)
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", DEFINITION, active=True)
    assert restream.state is S.PENDING
    simulate_node(db, redis_client, "late")
    reconcile(db, redis_client, settings)
    with db.transaction() as session:
        placed = session.get(Restream, restream.id)
        assert placed is not None
        assert (placed.state, placed.node_name) == (S.STARTING, "late")


def test_a_node_whose_lease_returns_is_active_again(
    db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    simulate_node(db, redis_client, "flaky", lease=False)
    reconcile(db, redis_client, settings)
    with db.transaction() as session:
        node = session.get(Node, "flaky")
        assert node is not None and node.state is NodeState.OFFLINE  # no lease: offline first
    renew(redis_client, "flaky")
    reconcile(db, redis_client, settings)
    with db.transaction() as session:
        node = session.get(Node, "flaky")
        assert node is not None and node.state is NodeState.ACTIVE


def test_only_one_round_runs_at_a_time(
    db: Database, engine: Engine, redis_client: redis.Redis, settings: Settings
) -> None:
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:id)"), {"id": RECONCILE_LOCK_ID})
        try:
            assert not reconcile(db, redis_client, settings).ran
        finally:
            other.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": RECONCILE_LOCK_ID})
    assert reconcile(db, redis_client, settings).ran


def test_no_node_is_judged_until_redis_has_kept_the_leases_for_a_ttl(
    db: Database, redis_client: redis.Redis, settings: Settings, sent: list[ControlMessage]
) -> None:
    """Redis lost its data (restarted without persistence): every lease is gone although no
    worker fenced. The reconciler waits a lease's lifetime for them to renew before it judges
    any node; what waits for a node is placed meanwhile on the nodes that renewed."""
    farm = service.Farm(redis_client, settings)
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", DEFINITION, active=True)
        waiting = service.create(session, farm, ADMIN, "w", DEFINITION, active=False)
        waiting.active, waiting.phase = True, Phase.PENDING  # as if its start found no room
    redis_client.flushdb()  # the leases and the memory key go together
    simulate_node(db, redis_client, "b")  # b renews first; a has not yet
    summary = reconcile(db, redis_client, settings)
    assert summary.ran and "MarkNodeOffline" not in summary.actions
    assert summary.actions.get("Assign") == 1
    with db.transaction() as session:
        kept = session.get(Restream, restream.id)
        assert kept is not None and (kept.node_name, kept.generation) == ("a", 1)
        placed = session.get(Restream, waiting.id)
        assert placed is not None and placed.node_name == "b"
    live.remember_since(redis_client, settings.lease_key_ttl_s + settings.lease_renew_interval_s)
    assert reconcile(db, redis_client, settings).actions.get("MarkNodeOffline") == 1


def test_a_node_action_applies_only_to_the_state_the_plan_saw(
    db: Database, redis_client: redis.Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan saw an offline node with a lease; by the time the round applies it, the
    node is draining: it stays draining rather than turning active."""
    simulate_node(db, redis_client, "d")
    with db.transaction() as session:
        node = session.get(Node, "d")
        assert node is not None
        node_service.transition(session, node, NodeState.DRAINING, "operator")
    monkeypatch.setattr(run, "plan", lambda *args, **kwargs: [MarkNodeActive("d", "renewed")])

    assert reconcile(db, redis_client, settings).actions == {}
    with db.transaction() as session:
        node = session.get(Node, "d")
        assert node is not None and node.state is NodeState.DRAINING


def test_a_node_whose_worker_died_reads_recovering_within_a_round_and_moves_once_lapsed(
    db: Database, redis_client: redis.Redis, redis_url: str, settings: Settings
) -> None:
    """Its lease lives on for seconds after a kill -9, but Redis saw its connections close:
    the next round says so (node offline, restream recovering, still on it). It moves only
    once the lease lapsed: then its FFmpeg certainly died (fenced, or with its worker)."""
    farm = service.Farm(redis_client, settings)
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", DEFINITION, active=True)
    worker = live.connect(redis_url, name=live.worker_connection_name("host:7:abc"))
    lease = live.NodeLease(node="a", renewed_at=0, holder="host:7:abc", running={restream.id: 1})
    live.write_lease(worker, lease, settings.lease_key_ttl_s)  # as its worker renews it
    with db.transaction() as session:
        reports.apply(session, Attempt(restream.id, 1, "a"), reports.Running())
    simulate_node(db, redis_client, "b")
    answering = reconcile(db, redis_client, settings)
    assert "Lose" not in answering.actions  # it answers
    assert answering.next_lapse_s is None  # nothing to move at any moment

    worker.close()  # the process died: Redis drops its connections at once
    summary = reconcile(db, redis_client, settings)
    assert summary.actions.get("Lose") == 1 and summary.actions.get("MarkNodeOffline") == 1
    # The next round is due the moment its lease lapses (the beat wakes for it).
    assert summary.next_lapse_s is not None
    assert 0 < summary.next_lapse_s <= settings.lease_key_ttl_s
    with db.transaction() as session:
        kept = session.get(Restream, restream.id)
        node = session.get(Node, "a")
        assert kept is not None and node is not None
        assert (kept.state, kept.node_name, kept.generation) == (S.RECOVERING, "a", 1)
        assert kept.state_reason is not None
        assert "node a stopped answering (its worker's connection to Redis closed" in (
            kept.state_reason
        )
        assert node.state is NodeState.OFFLINE

    redis_client.delete(live.lease_key("a"))  # the lease lapses
    reconcile(db, redis_client, settings)
    with db.transaction() as session:
        moved = session.get(Restream, restream.id)
        assert moved is not None
        assert (moved.state, moved.node_name, moved.generation) == (S.STARTING, "b", 2)


def test_a_fenced_restream_stays_on_its_node_until_it_answers_again(
    db: Database, redis_client: redis.Redis, settings: Settings, sent: list[ControlMessage]
) -> None:
    """The worker reports its fence (Redis was out of reach): RECOVERING there, with an event
    saying why. The node may start it again (its lease is back) under the same generation."""
    farm = service.Farm(redis_client, settings)
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", DEFINITION, active=True)
    attempt = Attempt(restream.id, 1, "a")
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Running())
        reports.apply(
            session,
            attempt,
            reports.Ended(outcome=Outcome.FENCED, exit_code=None, fence_reason="why"),
        )
    with db.transaction() as session:
        fenced = session.get(Restream, restream.id)
        assert fenced is not None
        assert (fenced.state, fenced.node_name) == (S.RECOVERING, "a")
        assert fenced.state_reason == "fenced on a: why"
        assert reports.owned_by(session, "a") == {restream.id: 1}
        assert reports.should_run(session, attempt) is not None
    sent.clear()
    reconcile(db, redis_client, settings)  # a answers and runs nothing: it starts it there
    assert [m.kwargs for m in sent if m.task == TASK_NODE_SYNC] == [
        {"node": "a", "desired": {restream.id: 1}}
    ]
    with db.transaction() as session:
        reports.apply(session, attempt, reports.Starting(pid=1, restarts=0))
        reports.apply(session, attempt, reports.Running())
        back = session.get(Restream, restream.id)
        assert back is not None and (back.state, back.generation) == (S.RUNNING, 1)


def test_a_fenced_node_that_runs_it_again_says_so_without_waiting_for_a_round(
    db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    """Its lease back, the worker starts what it fenced at once; its own reports place the
    restream there again (no reconcile round in between), with an event saying why."""
    farm = service.Farm(redis_client, settings)
    simulate_node(db, redis_client, "a")
    with db.transaction() as session:
        restream = service.create(session, farm, ADMIN, "r", DEFINITION, active=True)
    attempt = Attempt(restream.id, 1, "a")
    fence = reports.Ended(outcome=Outcome.FENCED, exit_code=None, fence_reason="why")
    with db.transaction() as session:
        for report in (reports.Running(), fence, reports.Starting(pid=2, restarts=0)):
            reports.apply(session, attempt, report)
        starting = session.get(Restream, restream.id)
        assert starting is not None
        assert (starting.state, starting.phase, starting.node_name) == (
            S.STARTING, Phase.PLACED, "a",
        )  # fmt: skip
        assert starting.state_reason == "FFmpeg started on a (pid 2)"  # its run's word
        reports.apply(session, attempt, reports.Running())
    with db.transaction() as session:
        back = session.get(Restream, restream.id)
        assert back is not None and back.state is S.RUNNING
    with db.transaction() as session:
        shown = session.execute(
            select(Event.to_state, Event.reason)
            .where(Event.subject_id == restream.id)
            .order_by(Event.id)
        ).all()
    assert [state for state, _ in shown[-3:]] == ["recovering", "starting", "running"]
    assert shown[-2].reason == "node a answers again and runs it"
