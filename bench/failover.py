"""Failover: seconds from `kill -9` of a worker until the API stops saying its restreams run
there ("told"), and until they all run again elsewhere ("moved").

    python bench/failover.py [--kills 10] [--restreams 6]

Starts a local farm (its own node drained, so the restreams live on two extra workers),
starts `--restreams` small test-video restreams, then `--kills` times: SIGKILL the worker
that holds them, time both moments (polled every 50 ms through the API), and start the killed
worker again for the next round.

What they are made of. Told: up to one reconcile interval (1 s): Redis drops the dead worker's
connections at once, and the next round says so. Moved: the lease's lifetime in Redis after
its last renewal (TTL + one renewal interval + the fence margin, 4.5 s by default: the
reconciler moves nothing before the old copies are certainly gone; the kill came up to one
renewal interval after that renewal), then a round at the moment it lapses, the start message,
and the start of FFmpeg on the new node.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localfarm import LocalFarm, environment, percentile, wait  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402


def small_restream(farm: LocalFarm, name: str) -> str:
    restream_id: str = farm.post(
        "/api/restream/create",
        {
            "restream_name": name,
            "input": {
                "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                "resolution_width": 160,
                "resolution_height": 90,
                "encoding_rate": 10,
                "test_video_bitrate": 100,
            },
            "output": {
                "output_type": "OUTPUT_TYPE_UDP_URL",
                "output_stream_url": f"udp://127.0.0.1:{free_port()}",
            },
        },
    )["id"]
    return restream_id


def placement(farm: LocalFarm, ids: list[str]) -> dict[str, tuple[str, str | None]]:
    found = {}
    for restream_id in ids:
        details = farm.post("/api/restream/getById", {"id": restream_id})
        found[restream_id] = (details["state"], details["node"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--restreams", type=int, default=6)
    parser.add_argument("--keep-farm-output", action="store_true")
    args = parser.parse_args()

    seconds: list[float] = []
    told: list[float] = []
    ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sf-failover-") as tmp:
        farm = LocalFarm(
            Path(tmp) / "farm", free_port(), not args.keep_farm_output, environment(), "home"
        )
        try:
            farm.http.post("/v1/nodes/home/drain", headers=farm.bearer).raise_for_status()
            for name in ("left", "right"):
                farm.start_worker(name)
            ids += [small_restream(farm, f"failover-{i}") for i in range(args.restreams)]
            wait(
                lambda: all(s == "running" for s, _ in placement(farm, ids).values()),
                60,
                "all running",
                every_s=0.1,
            )
            for _ in range(args.kills):
                nodes = [node for _, node in placement(farm, ids).values()]
                victim = max({"left", "right"}, key=nodes.count)
                killed = time.monotonic()
                os.kill(farm.workers[victim].pid, signal.SIGKILL)
                farm.workers[victim].wait()
                wait(
                    lambda victim=victim: (
                        not any(
                            state == "running" and node == victim
                            for state, node in placement(farm, ids).values()
                        )
                    ),
                    60,
                    "the API to tell",
                    every_s=0.05,
                )
                told.append(time.monotonic() - killed)
                wait(
                    lambda victim=victim: all(
                        state == "running" and node != victim
                        for state, node in placement(farm, ids).values()
                    ),
                    60,
                    "all running again",
                    every_s=0.05,
                )
                seconds.append(time.monotonic() - killed)
                print(f"kill {len(seconds)}: told {told[-1]:.2f} s, moved {seconds[-1]:.2f} s")
                farm.start_worker(victim)
        finally:
            for restream_id in ids:  # leave an external database as it was found
                farm.http.request(
                    "DELETE", "/api/restream/remove", json={"id": restream_id}, headers=farm.callaba
                )
            farm.stop()

    print(f"failover after kill -9, {args.restreams} restreams, {args.kills} kills:")
    for what, figures in (("told", told), ("moved", seconds)):
        print(
            f"  {what:5}  p50 {statistics.median(figures):.2f} s   "
            f"p90 {percentile(figures, 0.9):.2f} s   p99 {percentile(figures, 0.99):.2f} s   "
            f"max {max(figures):.2f} s"
        )


if __name__ == "__main__":
    main()
