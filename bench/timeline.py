"""Where a start's and a stop's time go, step by step, as the client, the API and the worker
each saw it.

    python bench/timeline.py [--count 20] [--ffmpeg PATH] [--first-poll-ms N]

Starts `streamfleet up` as `bench/start_stop.py` does (the same job: a 160x90 test signal
encoded to MPEG-TS over UDP), with `bench/timeline_hooks` on the PYTHONPATH of its processes:
each writes a timestamp to one file as a step happens (the request comes in, its credential
is checked, `service.start` runs, its transaction commits, its message is sent; the worker's
task runs, its check, FFmpeg spawned, media flows, the report committed), and the client
writes its own (the POST sent, answered, the state seen by polling `GET /v1/restreams/{id}`
every 5 ms). One restream is started and stopped `--count` times, each start after the same
FFmpeg command run alone, directly and through `setpriv` (the floor, as in
`bench/start_stop.py`; the first start and stop are not counted). Prints, for a start and
for a stop, the median time of each step from the moment the client sent its request, the
time since the step before, and the phases they make up next to the floor. All clocks are
this machine's one clock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import localfarm  # noqa: E402
from bench.start_stop import JOB, LocalFarm, ffmpeg_alone, floor_argv  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402
from common.ffmpeg.binary import resolve_ffmpeg  # noqa: E402
from common.processes import pdeathsig_prefix  # noqa: E402

PREFIX = pdeathsig_prefix("KILL")  # what the worker's spawns go through (worker.spawn)
HOOKS = Path(__file__).resolve().parent / "timeline_hooks"
SENT = "client: POST {} sent"
MESSAGE = "API: its message sent (LPUSH)"
TASK = "worker: the task runs"
SPAWNED = "worker: FFmpeg spawned"
# (name, from step, to step) of the phases each action's time is made of, in order.
PHASES = {
    "start": (
        ("the API: request to message sent", SENT.format("start"), MESSAGE),
        ("Redis and Celery: to the worker's task", MESSAGE, TASK),
        ("the worker: its check, to the spawn", TASK, "worker: spawning FFmpeg"),
        ("the worker: the spawn (fork, exec)", "worker: spawning FFmpeg", SPAWNED),
        ("FFmpeg: spawned to media flows", SPAWNED, "worker: media flows"),
        ("the worker: its running report", "worker: media flows", "worker: Running committed"),
        ("the client: its next poll", "worker: Running committed", "client: the API says running"),
    ),
    "stop": (
        ("the API: request to message sent", SENT.format("stop"), MESSAGE),
        ("Redis and Celery: to the worker's task", MESSAGE, TASK),
        ("the worker: to its supervisor's loop", TASK, "worker: stopping FFmpeg"),
        ("FFmpeg: stopping to gone", "worker: stopping FFmpeg", "worker: FFmpeg gone"),
        ("the worker: its ended report", "worker: FFmpeg gone", "worker: Ended committed"),
        ("the client: its next poll", "worker: Ended committed", "client: the API says idle"),
    ),
}
FLOORS = {
    "start": "FFmpeg alone, just before: spawn -> first sign of media",
    "stop": "FFmpeg alone, just before: SIGKILL -> exit",
}


def mark(path: Path, step: str) -> None:
    with path.open("a") as log:
        log.write(f"{time.time():.6f} {step}\n")


def cycles(path: Path) -> dict[str, list[dict[str, float]]]:
    """Each start's and each stop's steps, in ms from its client's request (first of each)."""
    found: dict[str, list[dict[str, float]]] = {"start": [], "stop": []}
    current: dict[str, float] | None = None
    sent = 0.0
    for line in path.read_text().splitlines():
        stamp, step = line.split(" ", 1)
        at = float(stamp)
        for action, steps in found.items():
            if step == SENT.format(action):
                current, sent = {}, at
                steps.append(current)
        if current is not None and step not in current:
            current[step] = (at - sent) * 1000
    return found


def report(action: str, steps: list[dict[str, float]], floors: dict[str, list[float]]) -> None:
    print(f"\n{action}: median ms since the client sent its request ({len(steps)} of them)")
    print_steps(action, steps)
    print_phases(action, steps, floors)


def print_steps(action: str, steps: list[dict[str, float]]) -> None:
    """Each step's median time, and the median of each cycle's own time since the step
    listed before it (steps missing from some cycles say in how many they were)."""
    medians = {
        step: statistics.median(s[step] for s in steps if step in s)
        for step in {step for s in steps for step in s}
    }
    # A step of a few cycles only (the worker's check for a reconciler's sync, say) is listed
    # apart: it is not on this action's path.
    seen = {step: sum(step in s for s in steps) for step in medians}
    ordered = sorted((m for m in medians if 2 * seen[m] >= len(steps)), key=medians.__getitem__)
    rare = sorted(m for m in medians if 2 * seen[m] < len(steps))
    for before, step in zip([SENT.format(action), *ordered], ordered, strict=False):
        since = [s[step] - s[before] for s in steps if step in s and before in s]
        count = f"  (in {seen[step]})" if seen[step] < len(steps) else ""
        plus = f"+{statistics.median(since):5.1f}" if since else "     —"
        print(f"  {medians[step]:7.1f}  ({plus})  {step}{count}")
    for step in rare:
        print(f"  {medians[step]:7.1f}  (in {seen[step]} only)  {step}")


def print_phases(
    action: str, steps: list[dict[str, float]], floors: dict[str, list[float]]
) -> None:
    """The phases of `PHASES`, the floors, and the whole next to its own floor (paired)."""
    print(f"  phases (median of each {action}'s own difference):")
    for name, start, end in PHASES[action]:
        spans = [s[end] - s[start] for s in steps if start in s and end in s]
        if spans:
            print(f"    {statistics.median(spans):6.1f}  {name}")
    for label, runs in floors.items():
        print(f"    {statistics.median(runs) * 1000:6.1f}  {FLOORS[action]}{label} (p50)")
    last = PHASES[action][-1][2]
    paired = zip(steps, floors[""], strict=True)
    totals = [(s[last], floor * 1000) for s, floor in paired if last in s]
    total = statistics.median(t for t, _ in totals)
    over = statistics.median(t - f for t, f in totals)
    what = last.split(": ", 1)[1]
    print(f"  sent -> {what}: {total:.1f} ms; over its own floor (paired) {over:.1f} ms")


def mark_cost_us(directory: Path, count: int = 200) -> float:
    """What one timestamp costs the process that writes it, in µs."""
    path = directory / "marks"
    started = time.perf_counter()
    for _ in range(count):
        mark(path, "a step")
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--ffmpeg", help="FFmpeg binary for the worker (FFMPEG_BINARY)")
    parser.add_argument(
        "--first-poll-ms",
        type=float,
        default=0,
        help="the client's first poll this long after the answer (what polling costs FFmpeg)",
    )
    args = parser.parse_args()
    if args.count < 2:
        parser.error("--count must be at least 2: the first start and stop are not counted")
    with tempfile.TemporaryDirectory(prefix="sf-timeline-") as tmp:
        trace = Path(tmp) / "timeline.log"
        path = os.pathsep.join(p for p in (str(HOOKS), os.environ.get("PYTHONPATH")) if p)
        env = localfarm.environment(PYTHONPATH=path, STREAMFLEET_TIMELINE=str(trace))
        if args.ffmpeg:
            env["FFMPEG_BINARY"] = args.ffmpeg
        binary = resolve_ffmpeg(env.get("FFMPEG_BINARY"))
        argv = floor_argv(binary, None)
        # The floor, and the floor as the worker spawns (through setpriv, when it has one).
        spawned = {"": argv, f" through {PREFIX[0]}": [*PREFIX, *argv]} if PREFIX else {"": argv}
        floors: dict[str, dict[str, list[float]]] = {
            action: {label: [] for label in spawned} for action in ("start", "stop")
        }
        cost_us = mark_cost_us(Path(tmp))
        farm = LocalFarm(Path(tmp) / "farm", free_port(), quiet=True, env=env)
        restream_id: str | None = None
        try:
            body = {**JOB, "restream_name": f"timeline-{time.time_ns()}"}
            restream_id = farm.post("/api/restream/create", body)["id"]
            trace.write_text("")  # from here on: what the farm did at start-up is not counted
            for _ in range(args.count):
                for label, command in spawned.items():  # the floors of this start and stop
                    started, stopped = ffmpeg_alone(command, signal.SIGKILL)
                    floors["start"][label].append(started)
                    floors["stop"][label].append(stopped)
                for action, state in (("start", "running"), ("stop", "idle")):
                    time.sleep(0.3)  # as a client's requests come: not one right after another
                    mark(trace, SENT.format(action))
                    farm.post(f"/api/restream/{action}", {"id": restream_id})
                    mark(trace, f"client: POST {action} answered")
                    time.sleep(args.first_poll_ms / 1000)
                    farm.reported(restream_id, state)
                    mark(trace, f"client: the API says {state}")
            found = cycles(trace)
            errors = Path(f"{trace}.errors")
            failed = errors.read_text() if errors.exists() else ""
        finally:
            if restream_id is not None:  # leave an external database as it was found
                with contextlib.suppress(httpx.HTTPError):
                    farm.http.request(
                        "DELETE", "/api/restream/remove", json={"id": restream_id},
                        headers=farm.callaba,
                    )  # fmt: skip
            farm.stop()
    poll = f", the first poll {args.first_poll_ms:g} ms after the answer"
    print(f"FFmpeg {binary}; {args.count} starts and stops of one restream{poll}")
    print(f"(a timestamp costs the process that writes it about {cost_us:.0f} µs)")
    if failed:
        print(f"some steps are not traced (the farm's code changed?):\n{failed}")
    for action in ("start", "stop"):
        # Not the first of each: the farm's processes import and connect as they serve it.
        runs = {label: values[1:] for label, values in floors[action].items()}
        report(action, found[action][1:], runs)


if __name__ == "__main__":
    main()
