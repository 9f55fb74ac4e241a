"""A node's own RTMP server on a real farm: run by its worker, published to by its restreams'
local RTMP outputs, read by players, gone with the worker."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.farm import Farm, running_farm
from tests.support.media import free_port, probe, stream_of
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("farm")]


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    with running_farm(tmp_path_factory.mktemp("farm"), pg_server_url) as started:
        yield started


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_a_local_rtmp_output_plays_from_the_nodes_own_server(farm: Farm) -> None:
    port = free_port()
    worker = farm.start_worker("media-node", {"STREAMFLEET_RTMP_SERVER_PORT": str(port)})
    nodes = {n["name"]: n for n in farm.http.get("/v1/nodes", headers=farm.bearer).json()}
    assert nodes["media-node"]["capabilities"]["local_rtmp_url"] == f"rtmp://127.0.0.1:{port}/live"
    assert nodes[farm.node]["capabilities"]["local_rtmp_url"] is None  # port 0: none
    body: dict[str, Any] = {
        "restream_name": "local-rtmp",
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO", "resolution_width": 160,
                  "resolution_height": 90, "encoding_rate": 10, "test_video_bitrate": 100},
        "output": {"output_type": "OUTPUT_TYPE_LOCAL_RTMP_URL", "output_stream_key": "show1"},
    }  # fmt: skip
    restream_id = farm.post("/api/restream/create", body)["id"]
    farm.post("/api/restream/start", {"id": restream_id})
    wait_for(lambda: farm.get_by_id(restream_id)["state"] == "running", timeout_s=30)
    assert farm.get_by_id(restream_id)["node"] == "media-node"  # the node that offers it
    played = wait_for(
        lambda: probe(f"rtmp://127.0.0.1:{port}/live/show1", timeout_s=5),
        timeout_s=20,
        what="the stream played from the node's server",
    )
    assert stream_of(played, "video")["width"] == 160

    os.kill(worker.pid, signal.SIGKILL)  # nothing of the node's server outlives its worker
    worker.wait()
    wait_for(lambda: not answers(port), timeout_s=10, what="the RTMP server gone")
