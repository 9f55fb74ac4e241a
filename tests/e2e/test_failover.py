"""A farm of several real workers: capacity, kill -9, a cut from Redis, drain, SIGTERM.

Every restream writes to its own UDP port, which makes its FFmpeg recognisable in the
process list; `FfmpegWatch` samples that list every 20 ms to prove that two copies of one
restream never run at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from common import live
from tests.support.farm import Farm, running_farm
from tests.support.ffmpeg_watch import FfmpegWatch
from tests.support.kube import FakeKubernetes
from tests.support.media import free_port
from tests.support.nodes import Twin
from tests.support.peers import bound, publisher, running
from tests.support.proxy import Proxy
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("failover")]

TWIN = "elsewhere:1:abc"  # the lease holder of another worker of a node's name
SMALL_MILLICORES = 73  # the cost model's figure for Farm.small_restream (160x90, 10 fps)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    # The node of `streamfleet up` is small: the extra workers carry most of the load.
    with running_farm(
        tmp_path_factory.mktemp("failover"),
        pg_server_url,
        {"STREAMFLEET_CPU_MILLICORES": "300"},
    ) as started:
        yield started


@pytest.fixture(autouse=True)
def clean(farm: Farm) -> Iterator[None]:
    yield
    farm.remove_all()


def create(farm: Farm, count: int, prefix: str) -> tuple[list[str], list[str]]:
    """`count` small restreams, started: their ids and their FFmpeg markers."""
    ids, markers = [], []
    for i in range(count):
        port = free_port()
        ids.append(farm.small_restream(f"{prefix}-{i}", port))
        markers.append(f"udp://127.0.0.1:{port}")
    return ids, markers


def all_running(farm: Farm, ids: list[str], *, avoid: str | None = None) -> bool:
    states = farm.states(ids).values()
    return all(state == "running" and node != avoid for state, node in states)


def wait_moved_off(farm: Farm, ids: list[str], node: str) -> None:
    wait_for(lambda: all_running(farm, ids, avoid=node), timeout_s=15, every_s=0.1, what="moved")


@contextmanager
def only(farm: Farm, node: str) -> Iterator[None]:
    """Every other node drained for the duration: what is started now lands on `node`."""
    others = [
        n["name"]
        for n in farm.http.get("/v1/nodes", headers=farm.bearer).json()
        if n["name"] != node and n["state"] == "active"
    ]
    for name in others:
        farm.http.post(f"/v1/nodes/{name}/drain", headers=farm.bearer).raise_for_status()
    try:
        yield
    finally:
        for name in others:
            farm.http.post(f"/v1/nodes/{name}/undrain", headers=farm.bearer).raise_for_status()


def started_on(farm: Farm, node: str, count: int, prefix: str) -> tuple[list[str], list[str]]:
    with only(farm, node):
        ids, markers = create(farm, count, prefix)
        wait_for(lambda: all_running(farm, ids), timeout_s=30, every_s=0.2, what="all running")
    assert {n for _, n in farm.states(ids).values()} == {node}
    return ids, markers


def never_two(watch: FfmpegWatch, markers: list[str]) -> None:
    doubled = {m: n for m, n in watch.most_at_once.items() if n > 1}
    assert not doubled, f"two copies ran at once: {doubled}"
    assert all(watch.processes[m] for m in markers)


def test_placement_respects_capacity_and_says_what_is_missing(farm: Farm) -> None:
    farm.start_worker("cap-b", {"STREAMFLEET_CPU_MILLICORES": "300"})
    try:
        ids, _ = create(farm, 9, "cap")  # 4 fit in 300 millicores on each of the two nodes
        wait_for(
            lambda: sorted(s for s, _ in farm.states(ids).values()).count("running") == 8,
            timeout_s=30,
            every_s=0.3,
            what="eight running",
        )
        states = farm.states(ids)
        per_node: dict[str | None, int] = {}
        for _state, node in states.values():
            per_node[node] = per_node.get(node, 0) + 1
        assert per_node == {farm.node: 4, "cap-b": 4, None: 1}
        waiting = next(rid for rid, (state, _) in states.items() if state == "pending")
        reason = farm.get_by_id(waiting)["state_reason"]
        assert reason.startswith(f"not enough free CPU on any node: need {SMALL_MILLICORES}")
    finally:
        farm.extra[-1].send_signal(signal.SIGTERM)
        farm.extra[-1].wait(30)


def test_kill_9_of_a_worker_moves_its_restreams_within_10_s(farm: Farm) -> None:
    victim = farm.start_worker("k-victim", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    farm.start_worker("k-rescue", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    ids, markers = started_on(farm, "k-victim", 4, "kill")
    with FfmpegWatch(markers) as watch:
        killed_at = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        # FFmpeg dies with its worker (PR_SET_PDEATHSIG), before anything else happens.
        wait_for(lambda: not any(watch.running(m) for m in markers), timeout_s=2, what="orphans")
        wait_for(
            lambda: all_running(farm, ids, avoid="k-victim"),
            timeout_s=15,
            every_s=0.1,
            what="all running elsewhere",
        )
        elapsed = time.monotonic() - killed_at
    assert elapsed < 10, f"took {elapsed:.1f} s"
    never_two(watch, markers)
    events = farm.http.get("/v1/nodes/k-victim/events", headers=farm.bearer).json()
    assert events[-1]["to_state"] == "offline"


def test_a_worker_cut_from_redis_fences_itself_before_its_restreams_run_elsewhere(
    farm: Farm, tmp_path: Path
) -> None:
    redis_port = int(farm.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    proxy = Proxy("127.0.0.1", redis_port)
    island = farm.start_worker(
        "island",
        {
            "STREAMFLEET_CPU_MILLICORES": "1000",
            "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "DATABASE_URL": farm.env["DATABASE_URL"],
        },
    )
    farm.start_worker("mainland", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    try:
        ids, markers = started_on(farm, "island", 3, "cut")
        with FfmpegWatch(markers) as watch:
            proxy.cut()
            wait_for(
                lambda: all_running(farm, ids, avoid="island"),
                timeout_s=20,
                every_s=0.1,
                what="all running elsewhere",
            )
        assert island.poll() is None  # the worker lives on, cut off
        never_two(watch, markers)
        for marker in markers:
            old, new = sorted(watch.processes[marker].values(), key=lambda s: s.first)[:2]
            assert old.last < new.first, f"{marker}: the copy on island outlived the move"
    finally:
        island.kill()
        island.wait()


def test_drain_moves_everything_and_undrain_restores(farm: Farm) -> None:
    farm.start_worker("d-drained", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    farm.start_worker("d-other", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    ids, markers = started_on(farm, "d-drained", 4, "drain")
    with FfmpegWatch(markers) as watch:
        drained = farm.http.post("/v1/nodes/d-drained/drain", headers=farm.bearer)
        assert drained.status_code == 202 and drained.json()["state"] == "draining"
        wait_moved_off(farm, ids, "d-drained")
    never_two(watch, markers)
    restored = farm.http.post("/v1/nodes/d-drained/undrain", headers=farm.bearer).json()
    assert restored["state"] == "active"


def test_a_cordoned_kubernetes_node_is_drained_by_its_worker(farm: Farm) -> None:
    """`kubectl drain` skips DaemonSet pods: the worker itself sees the cordon (in a fake
    Kubernetes API here) and moves its restreams while its machine is still up."""
    kube = FakeKubernetes()
    try:
        kube.set_node("k-cordoned")
        env = {"STREAMFLEET_DRAIN_ON_CORDON": "1", "STREAMFLEET_KUBERNETES_API_URL": kube.url}
        farm.start_worker("k-cordoned", {"STREAMFLEET_CPU_MILLICORES": "1000", **env})
        farm.start_worker("k-other", {"STREAMFLEET_CPU_MILLICORES": "1000"})
        ids, markers = started_on(farm, "k-cordoned", 3, "cordon")
        with FfmpegWatch(markers) as watch:
            kube.set_node("k-cordoned", unschedulable=True)
            wait_moved_off(farm, ids, "k-cordoned")
        never_two(watch, markers)
        assert node_state(farm, "k-cordoned") == "draining"
        kube.set_node("k-cordoned")
        wait_for(
            lambda: node_state(farm, "k-cordoned") == "active",
            timeout_s=10,
            every_s=0.1,
            what="active again once uncordoned",
        )
    finally:
        kube.close()


def node_state(farm: Farm, name: str) -> str:
    listed = farm.http.get("/v1/nodes", headers=farm.bearer).json()
    state: str = next(n["state"] for n in listed if n["name"] == name)
    return state


def test_sigterm_drains_the_worker_before_it_exits(farm: Farm) -> None:
    leaving = farm.start_worker("t-leaving", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    farm.start_worker("t-staying", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    ids, markers = started_on(farm, "t-leaving", 3, "term")
    with FfmpegWatch(markers) as watch:
        sent = time.monotonic()
        leaving.send_signal(signal.SIGTERM)
        wait_moved_off(farm, ids, "t-leaving")
        moved_in = time.monotonic() - sent
        assert leaving.wait(30) == 0
    never_two(watch, markers)
    # Faster than a lost lease (5 s) would have made it: the worker handed them over.
    assert moved_in < 5, f"took {moved_in:.1f} s"
    assert node_state(farm, "t-leaving") == "offline"


def test_a_second_worker_under_a_name_in_use_refuses_to_run(farm: Farm) -> None:
    """A cloned machine, a copied configuration: both workers would consume the node's queue
    and run copies of its restreams. The second waits a lease TTL, then exits saying why."""
    farm.start_worker("n-twin", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    ids, markers = started_on(farm, "n-twin", 2, "twin")
    with FfmpegWatch(markers) as watch:
        second = farm.start_worker("n-twin", {"STREAMFLEET_CPU_MILLICORES": "1000"}, wait=False)
        assert second.wait(60) != 0
        assert all_running(farm, ids)
    never_two(watch, markers)
    said = farm.worker_log("n-twin").read_text()
    holder = next(
        n["lease_holder"]
        for n in farm.http.get("/v1/nodes", headers=farm.bearer).json()
        if n["name"] == "n-twin"
    )
    assert f"node name 'n-twin' is in use: worker {holder} renewed its lease" in said, said
    assert "Give each worker its own STREAMFLEET_NODE_NAME" in said


def test_a_worker_whose_lease_is_taken_exits_and_leaves_the_node_alone(farm: Farm) -> None:
    """What a worker cut off from Redis finds when it comes back after a twin of its name
    took the node over (the twin is played here by a lease written in its name)."""
    lost = farm.start_worker("n-lost", {"STREAMFLEET_CPU_MILLICORES": "1000"})
    # Connected as the twin's worker would be: a lease whose holder has no connection to
    # Redis is one whose worker died.
    client = live.connect(farm.env["REDIS_URL"], name=live.worker_connection_name(TWIN))
    try:
        with Twin(client, "n-lost", TWIN):
            assert lost.wait(30) == 0  # a warm shutdown, as on SIGTERM
        node = next(
            n
            for n in farm.http.get("/v1/nodes", headers=farm.bearer).json()
            if n["name"] == "n-lost"
        )
        assert node["state"] == "active"  # the twin's node: neither drained nor offline
        assert live.read_leases(client, ["n-lost"])["n-lost"].holder == TWIN
        assert "This worker leaves." in farm.worker_log("n-lost").read_text()
    finally:
        live.release_lease(client, "n-lost", TWIN)
        client.close()


def test_a_u30_restream_with_no_u30_node_stays_pending(farm: Farm) -> None:
    restream_id = farm.small_restream(
        "hw", free_port(), transcoding={"video_transcoding": "mpsoc_vcu_h264"}
    )
    details = farm.get_by_id(restream_id)
    assert details["state"] == "pending"
    assert details["state_reason"] == "no live node's FFmpeg has the encoder mpsoc_vcu_h264"


FAKE_XILINX = Path(__file__).parents[1] / "fixtures" / "fake_xilinx_ffmpeg.py"


def test_a_u30_node_gets_u30_restreams_pinned_to_a_device(farm: Farm, tmp_path: Path) -> None:
    """A node whose FFmpeg is (a fake of) the Xilinx build, with two declared U30 devices: the
    probe finds its mpsoc encoders, placement pins restreams to devices, and the command
    lines pass the SDK's rules (the fake fails otherwise)."""
    binary = tmp_path / "xilinx-ffmpeg"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_XILINX} "$@"\n')
    binary.chmod(0o755)
    log = tmp_path / "argv.log"
    farm.start_worker(
        "vt1",
        {
            "FFMPEG_BINARY": str(binary),
            "STREAMFLEET_U30_DEVICES": "2",
            "FAKE_XLNX_LOG": str(log),
        },
    )
    node = next(
        n for n in farm.http.get("/v1/nodes", headers=farm.bearer).json() if n["name"] == "vt1"
    )
    assert {"mpsoc_vcu_h264", "mpsoc_vcu_hevc"} <= set(node["capabilities"]["ffmpeg"]["encoders"])
    assert node["capabilities"]["u30"]["slots"] == 8

    full_hd = farm.small_restream(
        "u30-hevc",
        free_port(),
        input={"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://127.0.0.1:1/live/src"},
        transcoding={"video_transcoding": "mpsoc_vcu_hevc", "output_video_bitrate": 4000,
                     "frame_width": 1280, "frame_height": 720},
    )  # fmt: skip
    four_k = farm.small_restream(
        "u30-4k",
        free_port(),
        input={"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://127.0.0.1:1/live/4k",
               "input_video_codec": "hevc"},
        transcoding={"video_transcoding": "mpsoc_vcu_h264", "frame_width": 3840, "frame_height": 2160},
    )  # fmt: skip
    wait_for(
        lambda: all(s == ("running", "vt1") for s in farm.states([full_hd, four_k]).values()),
        timeout_s=30,
        every_s=0.2,
        what="both running on vt1",
    )
    runs = [json.loads(line) for line in log.read_text().splitlines()]
    devices = sorted(argv[argv.index("-xlnx_hwdev") + 1] for argv in runs)
    assert devices == ["0", "1"]  # spread over the two devices
    four_k_argv = next(argv for argv in runs if "mpsoc_vcu_hevc" in argv[: argv.index("-i")])
    assert four_k_argv[four_k_argv.index("-slices") + 1] == "4"
    farm.extra[-1].send_signal(signal.SIGTERM)
    farm.extra[-1].wait(30)


def test_a_listen_input_reports_its_ingest_url_and_a_taken_port_is_refused(farm: Farm) -> None:
    port, sink = free_port(), free_port()
    body = {
        "input": {"input_type": "INPUT_TYPE_RTMP_LISTEN", "input_stream_listen_port": {"port": port}},
        "output": {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": f"udp://127.0.0.1:{sink}"},
    }  # fmt: skip
    with only(farm, farm.node):
        first = farm.post("/api/restream/create", {**body, "restream_name": "ingest"})["id"]
        second = farm.http.post(
            "/api/restream/create", json={**body, "restream_name": "clash"}, headers=farm.callaba
        )
    assert second.status_code == 409
    assert second.json()["message"] == (
        f"port {port}/TCP is taken on every node that could run this (restream {first} on {farm.node})"
    )
    ingest = farm.get_by_id(first)["input"][0]["ingest_url"]
    assert ingest == f"rtmp://127.0.0.1:{port}/live/{first}"
    wait_for(lambda: bound(port, udp=False), timeout_s=15, what="the restream listening")
    with running(publisher(["-f", "flv", ingest])):
        wait_for(lambda: farm.get_by_id(first)["state"] == "running", timeout_s=20, what="running")
