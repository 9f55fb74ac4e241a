"""Start and stop latency through the whole distributed path, on a local farm.

    python bench/start_stop.py [--count 20] [--ffmpeg PATH] [--progress-period S]

Starts `streamfleet up` in a temporary directory (embedded PostgreSQL and Redis unless
DATABASE_URL / REDIS_URL are set), creates `--count` small test-video restreams (160x90,
10 fps, to a UDP sink) through the Callaba API, then for each one, one at a time:

  start -> running   from just before `POST /api/restream/start` is sent to the first
                     progress of its FFmpeg (the `running` event the worker records)
  stop  -> exited    from just before `POST /api/restream/stop` is sent to the exit of its
                     FFmpeg (the `idle` event the worker records once the process is gone)

Event times come from PostgreSQL's clock on this same machine. For comparison it also runs
the same FFmpeg command line directly, without the farm (the floor: FFmpeg's own start-up and
shutdown). Prints p50/p90/max.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import localfarm  # noqa: E402
from bench.localfarm import percentile, wait  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402
from common.definitions.restream import RestreamDefinition  # noqa: E402
from common.ffmpeg.argv import build_argv  # noqa: E402
from common.ffmpeg.binary import resolve_ffmpeg  # noqa: E402
from common.ffmpeg.placement import Placement  # noqa: E402
from common.ffmpeg.probe import probe  # noqa: E402
from common.ffmpeg.progress import ProgressParser, flowing  # noqa: E402

JOB = {
    "input": {
        "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
        "resolution_width": 160,
        "resolution_height": 90,
        "encoding_rate": 10,
        "test_video_bitrate": 100,
    },
    "output": {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"},
    "active": False,
}


class LocalFarm(localfarm.LocalFarm):
    def event_time(self, restream_id: str, to_state: str, after: float) -> float | None:
        events = self.http.get(f"/v1/restreams/{restream_id}/events", headers=self.bearer).json()
        for event in events:
            at = datetime.fromisoformat(event["at"]).timestamp()
            if event["to_state"] == to_state and at >= after - 0.5:
                return at
        return None


def ffmpeg_alone(binary: str, period: str | None, count: int) -> tuple[list[float], list[float]]:
    """The same job's FFmpeg run directly: spawn -> first progress, SIGINT -> exit."""
    definition = RestreamDefinition.model_validate(
        {"input": JOB["input"], "outputs": [JOB["output"]]}
    )
    capabilities = probe(binary)
    argv = [binary, *build_argv(
        definition,
        Placement("bench"),
        progress_period_s=float(period) if period else capabilities.progress_period_s(),
    )]  # fmt: skip
    starts, stops = [], []
    for _ in range(count):
        sent = time.monotonic()
        process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert process.stdout is not None
        parser = ProgressParser()
        for raw in process.stdout:
            block = parser.feed(raw.decode())
            if block is not None and flowing(block):
                break
        starts.append(time.monotonic() - sent)
        time.sleep(0.5)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        process.wait()
        stops.append(time.monotonic() - sent)
    return starts, stops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--keep-farm-output", action="store_true", help="show the farm's logs")
    parser.add_argument("--ffmpeg", help="FFmpeg binary for the worker (FFMPEG_BINARY)")
    parser.add_argument("--progress-period", help="STREAMFLEET_PROGRESS_PERIOD_S for the worker")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.ffmpeg:
        env["FFMPEG_BINARY"] = args.ffmpeg
    if args.progress_period:
        env["STREAMFLEET_PROGRESS_PERIOD_S"] = args.progress_period

    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        farm = LocalFarm(Path(tmp) / "farm", free_port(), not args.keep_farm_output, env)
        try:
            ids = [
                farm.http.post(
                    "/api/restream/create",
                    json={**JOB, "restream_name": f"bench-{i}"},
                    headers=farm.callaba,
                ).json()["id"]
                for i in range(args.count)
            ]
            starts, stops, start_calls, stop_calls = [], [], [], []
            for restream_id in ids:
                sent = time.time()
                farm.http.post(
                    "/api/restream/start", json={"id": restream_id}, headers=farm.callaba
                )
                start_calls.append(time.time() - sent)
                running = wait(
                    lambda rid=restream_id, t=sent: farm.event_time(rid, "running", t),
                    30,
                    "running",
                )
                starts.append(running - sent)
                time.sleep(0.5)  # let it run a little
                sent = time.time()
                farm.http.post("/api/restream/stop", json={"id": restream_id}, headers=farm.callaba)
                stop_calls.append(time.time() - sent)
                idle = wait(
                    lambda rid=restream_id, t=sent: farm.event_time(rid, "idle", t), 30, "idle"
                )
                stops.append(idle - sent)
            nodes = farm.http.get("/v1/nodes", headers=farm.bearer).json()
            version = nodes[0]["capabilities"]["ffmpeg"]["version"]
            for restream_id in ids:  # leave an external database as it was found
                farm.http.request(
                    "DELETE", "/api/restream/remove", json={"id": restream_id}, headers=farm.callaba
                )
        finally:
            farm.stop()

    binary = resolve_ffmpeg(env.get("FFMPEG_BINARY"))
    alone_starts, alone_stops = ffmpeg_alone(binary, args.progress_period, args.count)

    def line(name: str, values: list[float]) -> str:
        ms = [v * 1000 for v in values]
        return (
            f"{name:<28} p50 {statistics.median(ms):7.1f} ms   p90 {percentile(ms, 0.9):7.1f} ms"
            f"   max {max(ms):7.1f} ms"
        )

    period = args.progress_period or "default"
    print(f"start/stop latency over {args.count} restreams: FFmpeg {version}, period {period}")
    print(line("start -> running (first progress)", starts))
    print(line("stop -> FFmpeg exited", stops))
    print(line("  POST start answered", start_calls))
    print(line("  POST stop answered", stop_calls))
    print("the same FFmpeg command run directly, without the farm:")
    print(line("  spawn -> first progress", alone_starts))
    print(line("  SIGINT -> exited", alone_stops))


if __name__ == "__main__":
    main()
