"""The node runtime between a control message and the supervisor, on real PostgreSQL, Redis
and FFmpeg (the source probe is the one fake: it waits for the test)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common import live
from common.accounts.principal import Principal, Role
from common.accounts.service import ensure_project
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.definitions.states import NodeState, RestreamState
from common.lifecycle import nodes as node_service
from common.lifecycle import service
from common.models import Node, Restream
from tests.support.media import free_port
from tests.support.nodes import Twin
from tests.support.wait import wait_for
from worker import launch as launch_module
from worker.runtime import NodeRuntime

ADMIN = Principal("test", Role.ADMIN, None)
pytestmark = pytest.mark.xdist_group("runtime")


@pytest.fixture
def node(settings: Settings, committing_db: Database, tmp_path: Path) -> Iterator[NodeRuntime]:
    own = settings.model_copy(
        update={
            "node_name": "rt-node",
            "worker_http_port": 0,
            "rtsp_server_port": 0,
            "media_dir": str(tmp_path),
            "cpu_millicores": 64_000,  # a pull's size is unknown: placement budgets 1080p30
        }
    )
    started = NodeRuntime(own, lambda message: None)
    started.start()
    try:
        yield started
    finally:
        started.shutdown()


def test_a_stop_during_a_start_cancels_it(
    node: NodeRuntime, committing_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stop arrives while the start — twice over: the start message and a sync — is still
    probing its source: the stop is confirmed at once, and neither start it overtook spawns
    anything afterwards."""
    probing, release = threading.Semaphore(0), threading.Event()

    def slow_probe(binary: str, input_args: list[str]) -> str:
        probing.release()
        release.wait(10)
        return "h264"

    monkeypatch.setattr(launch_module, "source_video_codec", slow_probe)
    definition = RestreamDefinition.model_validate(
        {
            "input": {
                "input_type": "INPUT_TYPE_UDP_URL",
                "input_stream_url": f"udp://127.0.0.1:{free_port()}",
            },
            "transcoding": {"video_transcoding": "libx264", "copy_when_source_is": "h264"},
            "outputs": [
                {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"}
            ],
        }
    )
    farm = service.Farm(node.redis, node.settings)
    with committing_db.transaction() as session:
        ensure_project(session, node.settings.default_project_name)
        restream = service.create(session, farm, ADMIN, "racy", definition, active=True)
        restream_id = restream.id
    assert restream.node_name == "rt-node"

    answers: list[bool] = []
    starts = [
        threading.Thread(target=lambda: answers.append(node.controls.start(restream_id, 1)))
        for _ in range(2)
    ]
    for start in starts:
        start.start()
    assert probing.acquire(timeout=10) and probing.acquire(timeout=10)  # both are probing
    with committing_db.transaction() as session:
        service.stop(session, ADMIN, restream_id)
    node.controls.stop(restream_id, 1)  # as the stop message would
    release.set()
    for start in starts:
        start.join(10)

    assert answers == [False, False] and node.supervisor.generations() == {}

    def state() -> RestreamState:
        with committing_db.transaction() as session:
            row = session.get(Restream, restream_id)
            assert row is not None
            return row.state

    wait_for(lambda: state() is RestreamState.IDLE, what="the stop confirmed")


def test_a_stopping_worker_gives_up_its_lease_before_it_turns_offline(
    settings: Settings, committing_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Otherwise a reconcile round between the two sees an offline node with a lease, marks
    it active again, and the node that has left stays active for good."""
    own = settings.model_copy(
        update={"node_name": "rt-leaving", "worker_http_port": 0, "media_dir": str(tmp_path)}
    )
    leaving = NodeRuntime(own, lambda message: None)
    leaving.start()
    lease_when_offline: list[bool] = []
    transition = node_service.transition

    def watched(session: Any, node: Node, to: NodeState, reason: str) -> None:
        if to is NodeState.OFFLINE:
            lease_when_offline.append("rt-leaving" in live.read_leases(leaving.redis, [node.name]))
        transition(session, node, to, reason)

    monkeypatch.setattr(node_service, "transition", watched)
    leaving.shutdown()

    assert lease_when_offline == [False]
    with committing_db.transaction() as session:
        row = session.get(Node, "rt-leaving")
        assert row is not None and row.state is NodeState.OFFLINE


def test_a_worker_whose_lease_is_taken_leaves_the_node_to_its_holder(
    settings: Settings, committing_db: Database, tmp_path: Path
) -> None:
    """Another worker of the same name holds the lease now and consumes the node's queue too:
    this one confirms no stop (the restream may run there), and leaving neither drains the
    node nor marks it offline nor touches the other's lease."""
    own = settings.model_copy(
        update={"node_name": "rt-twin", "worker_http_port": 0, "media_dir": str(tmp_path)}
    )
    told = threading.Event()
    twin = NodeRuntime(own, lambda message: None, on_lost=told.set)
    twin.start()
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
            "outputs": [
                {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"}
            ],
        }
    )
    farm = service.Farm(twin.redis, own)
    with committing_db.transaction() as session:
        ensure_project(session, own.default_project_name)
        restream = service.create(session, farm, ADMIN, "twinned", definition, active=True)
        assert restream.node_name == "rt-twin"
        service.stop(session, ADMIN, restream.id)
    with Twin(twin.redis, "rt-twin"):
        assert told.wait(5)
        twin.controls.stop(restream.id, restream.generation)  # as a stop message would
        twin.shutdown()

    with committing_db.transaction() as session:
        row = session.get(Restream, restream.id)
        node = session.get(Node, "rt-twin")
        assert row is not None and node is not None
        assert (row.state, node.state) == (RestreamState.STOPPING, NodeState.ACTIVE)
    assert live.read_leases(twin.redis, ["rt-twin"])["rt-twin"].holder == "elsewhere:1:abc"
