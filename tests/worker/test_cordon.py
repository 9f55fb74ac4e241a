"""Drain on cordon: a worker following its Node in a fake Kubernetes API, on real PostgreSQL and
Redis (simulated nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

from common import events
from common.accounts.principal import Principal, Role
from common.celery_app import TASK_RESTREAM_STOP, node_queue
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import NodeState, RestreamState
from common.kube import Kubernetes
from common.lifecycle import nodes, service
from common.models import Node, Restream
from common.outbox import ControlMessage
from tests.support.kube import FakeKubernetes
from tests.support.nodes import simulate_node
from worker.cordon import CordonWatch

ADMIN = Principal("test", Role.ADMIN, None)
DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    fake = FakeKubernetes()
    yield fake
    fake.close()


def watch(db: Database, kube: FakeKubernetes, node: str, token: Path | None = None) -> CordonWatch:
    def follow(cordoned: bool) -> None:
        with db.transaction() as session:
            nodes.follow_cordon(session, node, cordoned)

    return CordonWatch(Kubernetes.in_cluster(kube.url, token), node, follow)


def state_of(db: Database, node: str) -> tuple[NodeState, list[tuple[str | None, str]]]:
    with db.transaction() as session:
        row = session.get(Node, node)
        assert row is not None
        history = [(e.to_state, e.reason) for e in events.history(session, events.NODE, node)]
        return row.state, history


@pytest.fixture
def farm(redis_client: redis.Redis, settings: Settings) -> service.Farm:
    return service.Farm(redis_client, settings)


def test_a_cordoned_node_drains_and_takes_restreams_again_once_uncordoned(
    db: Database,
    farm: service.Farm,
    kube: FakeKubernetes,
    sent: list[ControlMessage],
    tmp_path: Path,
) -> None:
    simulate_node(db, farm.redis, "k1")
    with db.transaction() as session:
        for name in ("r1", "r2"):
            service.create(session, farm, ADMIN, name, DEFINITION, active=True)
    token = tmp_path / "token"
    token.write_text("worker-token\n")
    watcher = watch(db, kube, "k1", token)
    kube.set_node("k1")
    sent.clear()

    assert watcher.check() is False
    assert state_of(db, "k1")[0] is NodeState.ACTIVE and not sent

    kube.set_node("k1", unschedulable=True)  # kubectl cordon (kubectl drain begins with it)
    assert watcher.check() is True
    state, history = state_of(db, "k1")
    assert state is NodeState.DRAINING
    assert history[-1] == ("draining", nodes.CORDONED)
    with db.transaction() as session:
        moving = session.execute(select(Restream)).scalars().all()
        assert {(r.state, r.active, r.node_name) for r in moving} == {
            (RestreamState.STOPPING, True, "k1")  # stop there, then placed elsewhere
        }
    assert {(m.task, m.queue) for m in sent} == {(TASK_RESTREAM_STOP, node_queue("k1"))}
    sent.clear()
    assert watcher.check() is True and not sent  # followed once, not at every poll

    kube.set_node("k1")  # kubectl uncordon
    assert watcher.check() is False
    state, history = state_of(db, "k1")
    assert state is NodeState.ACTIVE
    assert history[-1] == ("active", "its Kubernetes node is uncordoned")
    assert {auth for _, _, auth in kube.calls} == {"Bearer worker-token"}
    assert {path for _, path, _ in kube.calls} == {"/api/v1/nodes/k1"}


def test_an_operators_drain_outlasts_the_uncordon(
    db: Database, redis_client: redis.Redis, kube: FakeKubernetes
) -> None:
    simulate_node(db, redis_client, "k2")
    watcher = watch(db, kube, "k2")
    kube.set_node("k2", unschedulable=True)
    watcher.check()
    with db.transaction() as session:
        nodes.undrain(session, ADMIN, "k2")
        nodes.drain(session, ADMIN, "k2")  # now drained by an operator, while still cordoned
    kube.set_node("k2")
    assert watcher.check() is False
    assert state_of(db, "k2")[0] is NodeState.DRAINING


@pytest.mark.parametrize("taint", ["ToBeDeletedByClusterAutoscaler", "karpenter.sh/disrupted"])
def test_a_node_an_autoscaler_is_removing_drains(
    db: Database, redis_client: redis.Redis, kube: FakeKubernetes, taint: str
) -> None:
    simulate_node(db, redis_client, "k3")
    kube.set_node("k3", taints=(taint,))
    assert watch(db, kube, "k3").check() is True
    assert state_of(db, "k3")[0] is NodeState.DRAINING


def test_an_api_that_does_not_answer_changes_nothing(
    db: Database, redis_client: redis.Redis, kube: FakeKubernetes
) -> None:
    simulate_node(db, redis_client, "k4")
    watcher = watch(db, kube, "k4")
    assert watcher.check() is None  # no such Node: 404
    kube.set_node("k4", unschedulable=True)
    kube.close()
    assert watcher.check() is None  # the API away
    assert state_of(db, "k4") == (NodeState.ACTIVE, [])
