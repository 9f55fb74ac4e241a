"""Start and stop latency through the whole distributed path, on a local farm.

    python bench/start_stop.py [--count 20] [--ffmpeg PATH] [--progress-period S]

Starts `streamfleet up` in a temporary directory (embedded PostgreSQL and Redis unless
DATABASE_URL / REDIS_URL are set), creates `--count` restreams of one small job (a test signal,
160x90 at 10 fps with a sine tone, encoded with libx264 veryfast at 100 kbit/s and AAC, sent as
MPEG-TS over UDP) through the Callaba API, then for each one, one at a time:

  start -> running   from just before `POST /api/restream/start` is sent until
                     `GET /v1/restreams/{id}` (polled every 5 ms, as a client would) says
                     `running`; and until the `running` event the worker recorded
  stop  -> idle      from just before `POST /api/restream/stop` is sent until the API says
                     `idle` (its FFmpeg is gone); and until the recorded `idle` event

Event times come from PostgreSQL's clock on this same machine. The floor is the same FFmpeg
command line run directly, without the farm, in the same run: spawn -> the first sign that media
flows (its output header written, or its first progress report with output), and SIGINT ->
exit (a polite stop) and SIGKILL -> exit (what the farm does to an FFmpeg whose outputs have
nothing to finish, as here). One floor run goes just before each restream's start and stop,
with the farm up: the machine's speed drifts by a third from one minute to the next, so each
start is also compared with its own floor ("over the floor, paired"). Prints p50/p90/max.
"""

from __future__ import annotations

import argparse
import os
import selectors
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
from common.ffmpeg.outcome import output_header  # noqa: E402
from common.ffmpeg.outputs import needs_clean_end  # noqa: E402
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
    def recorded(self, restream_id: str, to_state: str, after: float) -> float:
        """When the restream's event into `to_state` (since `after`) happened."""
        path = f"/v1/restreams/{restream_id}/events"

        def event_time() -> float | None:
            for event in self.http.get(path, headers=self.bearer).json():
                at = datetime.fromisoformat(event["at"]).timestamp()
                if event["to_state"] == to_state and at >= after - 0.5:
                    return at
            return None

        return wait(event_time, 30, f"the {to_state} event")

    def reported(self, restream_id: str, state: str) -> float:
        """When the API first says `state`, polled every 5 ms as a client would."""
        path = f"/v1/restreams/{restream_id}"
        return wait(
            lambda: (
                self.http.get(path, headers=self.bearer).json()["state"] == state and time.time()
            ),
            30,
            state,
        )


def _first_sign_of_media(process: subprocess.Popen[bytes]) -> None:
    """Until FFmpeg writes its output header (stderr) or reports output (stdout)."""
    assert process.stdout is not None
    assert process.stderr is not None
    parser = ProgressParser()
    pending = {process.stdout.fileno(): b"", process.stderr.fileno(): b""}
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout.fileno(), selectors.EVENT_READ)
        selector.register(process.stderr.fileno(), selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                fd = key.fd
                *lines, pending[fd] = (pending[fd] + os.read(fd, 65536)).split(b"\n")
                for raw in lines:
                    line = raw.decode(errors="replace")
                    if fd == process.stderr.fileno():
                        if output_header(line.rstrip()):
                            return
                        continue
                    block = parser.feed(line + "\n")
                    if block is not None and flowing(block):
                        return


def floor_argv(binary: str, period: str | None) -> list[str]:
    """The job's FFmpeg command, as the worker builds it."""
    definition = RestreamDefinition.model_validate(
        {"input": JOB["input"], "outputs": [JOB["output"]]}
    )
    capabilities = probe(binary)
    return [binary, *build_argv(
        definition,
        Placement("bench"),
        progress_period_s=float(period)
        if period
        else capabilities.progress_period_s(clean_end=needs_clean_end(definition)),
    )]  # fmt: skip


def ffmpeg_alone(argv: list[str], how: signal.Signals) -> tuple[float, float]:
    """The job's FFmpeg run directly: spawn -> first sign of media; `how` -> exit."""
    sent = time.monotonic()
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _first_sign_of_media(process)
    started = time.monotonic() - sent
    time.sleep(0.5)
    sent = time.monotonic()
    process.send_signal(how)
    process.wait()
    stopped = time.monotonic() - sent
    process.communicate()
    return started, stopped


def measure(
    farm: LocalFarm,
    restream_id: str,
    argv: list[str],
    how: signal.Signals,
    figures: dict[str, list[float]],
) -> None:
    """One floor run (stopped by `how`), then the restream's start and stop through the farm."""

    def add(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    def change(action: str, state: str) -> float:
        """POST `action`, then until the API says `state` (returned) and its event."""
        sent = time.time()
        farm.post(f"/api/restream/{action}", {"id": restream_id})
        add(f"  POST {action} answered", time.time() - sent)
        seen = farm.reported(restream_id, state) - sent
        add(f"{action} -> API says {state}", seen)
        add(f"{action} -> {state} recorded", farm.recorded(restream_id, state, sent) - sent)
        return seen

    floor_start, floor_stop = ffmpeg_alone(argv, how)
    add("  spawn -> first sign of media", floor_start)
    add(f"  {how.name} -> exited", floor_stop)
    add("start over the floor, paired", change("start", "running") - floor_start)
    time.sleep(0.5)  # let it run a little
    idle = change("stop", "idle")
    if how is signal.SIGKILL:
        add("stop over the SIGKILL floor, paired", idle - floor_stop)


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<36} p50 {statistics.median(ms):7.1f} ms   p90 {percentile(ms, 0.9):7.1f} ms"
        f"   max {max(ms):7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--keep-farm-output", action="store_true", help="show the farm's logs")
    parser.add_argument("--ffmpeg", help="FFmpeg binary for the worker (FFMPEG_BINARY)")
    parser.add_argument("--progress-period", help="STREAMFLEET_PROGRESS_PERIOD_S for the worker")
    args = parser.parse_args()
    env = localfarm.environment()
    if args.ffmpeg:
        env["FFMPEG_BINARY"] = args.ffmpeg
    if args.progress_period:
        env["STREAMFLEET_PROGRESS_PERIOD_S"] = args.progress_period

    figures: dict[str, list[float]] = {}
    binary = resolve_ffmpeg(env.get("FFMPEG_BINARY"))
    argv = floor_argv(binary, args.progress_period)
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        farm = LocalFarm(Path(tmp) / "farm", free_port(), not args.keep_farm_output, env)
        try:
            ids = [
                farm.post("/api/restream/create", {**JOB, "restream_name": f"bench-{i}"})["id"]
                for i in range(args.count)
            ]
            for i, restream_id in enumerate(ids):
                how = signal.SIGINT if i % 2 == 0 else signal.SIGKILL
                measure(farm, restream_id, argv, how, figures)
            nodes = farm.http.get("/v1/nodes", headers=farm.bearer).json()
            version = nodes[0]["capabilities"]["ffmpeg"]["version"]
            for restream_id in ids:  # leave an external database as it was found
                farm.http.request(
                    "DELETE", "/api/restream/remove", json={"id": restream_id}, headers=farm.callaba
                )
        finally:
            farm.stop()

    period = args.progress_period or "default"
    print(f"start/stop over {args.count} restreams: FFmpeg {version} ({binary}), period {period}")
    for name in (
        "start -> API says running",
        "start -> running recorded",
        "  POST start answered",
        "stop -> API says idle",
        "stop -> idle recorded",
        "  POST stop answered",
        "start over the floor, paired",
        "stop over the SIGKILL floor, paired",
    ):
        print(line(name, figures[name]))
    print("the floor: the same FFmpeg command run directly, just before each start and stop:")
    for name in ("  spawn -> first sign of media", "  SIGINT -> exited", "  SIGKILL -> exited"):
        print(line(name, figures[name]))


if __name__ == "__main__":
    main()
