"""Continuity: what a receiver sees when a restream's primary input dies, then its backup,
then both return; and what continuity costs in CPU.

    python bench/continuity.py [--loss-ms 500] [--failback-s 2] [--rounds 3]

Against nginx-rtmp on loopback: two colour publishers (primary white, backup grey) and a
restream pulling both (320x180, 25 fps, libx264 zerolatency, a key frame a second) that
publishes to the same server; a receiver reads it and tells each frame's source by its
brightness (the slate is black). Each round kills the primary (time until the receiver shows
the backup, from the kill, i.e. from the primary's last packet), kills the backup (time until
the slate), starts the primary again (time until it is back: the failback), and reports the
longest gap between two frames at the receiver and whether nginx-rtmp kept one publishing
session for the restream from start to end. Each switch is also timed as the farm reports it
(the live statistics' `on_air_since`): from the kill to the switch, the rest of the time at the
receiver being the way through the output stage, nginx-rtmp and the receiver. Then the CPU of
the restream's processes (stages, switch, output stage) for 10 s, next to the same restream
without continuity.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localfarm import LocalFarm, environment, wait  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402
from tests.support.continuity import (  # noqa: E402
    BLACK,
    GREY,
    WHITE,
    Receiver,
    continuity_body,
    publisher,
    publishing_client,
)
from worker.rtmp_server import RtmpServer  # noqa: E402


def cpu_of(pid: int, seconds: float = 10.0) -> float:
    """CPU seconds per second of a process and all its children, over `seconds`."""
    root = psutil.Process(pid)

    def total() -> float:
        processes = [root, *root.children(recursive=True)]
        return sum(sum(p.cpu_times()[:4]) for p in processes if p.is_running())

    before = total()
    time.sleep(seconds)
    return (total() - before) / seconds


def running_pid(farm: LocalFarm, restream_id: str) -> int:
    def pid() -> int | None:
        live = farm.http.get(f"/v1/restreams/{restream_id}/stats", headers=farm.bearer).json()
        found: int | None = (live.get("live") or {}).get("pid")
        return found

    wait(pid, 30, "its process", every_s=0.2)
    found = pid()
    assert found is not None
    return found


def switches(
    farm: LocalFarm, server: RtmpServer, sources: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, list[float]], float, bool, str]:
    """The rounds: the figures, the longest gap, whether one session held, the restream."""
    base = f"rtmp://127.0.0.1:{server.port}/live"
    figures: dict[str, list[float]] = {
        "backup": [], "slate": [], "primary": [], "backup switch": [], "slate switch": [],
    }  # fmt: skip
    body = continuity_body(base, loss_ms=args.loss_ms, failback_s=args.failback_s)
    made = farm.http.post("/v1/restreams", json=body, headers=farm.bearer)
    made.raise_for_status()
    wait(lambda: publishing_client(server, "out"), 30, "its output", every_s=0.2)
    session = publishing_client(server, "out")
    receiver = Receiver(f"{base}/out")
    try:
        wait(lambda: receiver.showing(WHITE), 30, "the primary", every_s=0.05)
        for _ in range(args.rounds):
            for source, shown in (("primary", GREY), ("backup", BLACK)):
                time.sleep(2)
                killed, killed_at = time.monotonic(), time.time()
                sources.pop(source).kill()
                wait(lambda shown=shown: receiver.showing(shown, 0.2), 20, shown, every_s=0.01)
                what = "backup" if shown == GREY else "slate"
                figures[what].append(time.monotonic() - killed)
                since = switched_at(farm, made.json()["id"], what, after=killed_at)
                figures[f"{what} switch"].append(since - killed_at)
            time.sleep(1)
            restored = time.monotonic()
            sources["primary"] = publisher("white", f"{base}/primary")
            sources["backup"] = publisher("gray", f"{base}/backup")
            wait(lambda: receiver.showing(WHITE, 0.2), 30, "the primary", every_s=0.01)
            figures["primary"].append(time.monotonic() - restored)
        return (
            figures,
            receiver.longest_gap_s(),
            publishing_client(server, "out") == session,
            (made.json()["id"]),
        )
    finally:
        receiver.process.kill()


def switched_at(farm: LocalFarm, restream_id: str, on_air: str, *, after: float) -> float:
    """When the restream's switch put `on_air` on air, as its live statistics say."""

    def since() -> float | None:
        live = farm.http.get(f"/v1/restreams/{restream_id}/stats", headers=farm.bearer).json()
        found = live.get("live") or {}
        at = found.get("on_air_since")
        return at if found.get("on_air") == on_air and at and at > after else None

    wait(since, 10, f"{on_air} on air", every_s=0.1)
    at = since()
    assert at is not None
    return at


def plain_twin(farm: LocalFarm, server: RtmpServer) -> str:
    """The same restream without continuity (its primary only), for its CPU."""
    base = f"rtmp://127.0.0.1:{server.port}/live"
    body = continuity_body(base, loss_ms=1000, failback_s=30)
    body = {**body, "name": "plain", "inputs": None, "input": body["inputs"][0]}
    body.pop("continuity")
    body["outputs"] = [{**body["outputs"][0], "output_stream_url": f"{base}/plain"}]
    made = farm.http.post("/v1/restreams", json=body, headers=farm.bearer)
    made.raise_for_status()
    wait(lambda: publishing_client(server, "plain"), 30, "the plain one", every_s=0.2)
    restream_id: str = made.json()["id"]
    return restream_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loss-ms", type=int, default=500)
    parser.add_argument("--failback-s", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-farm-output", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sf-continuity-") as tmp:
        server = RtmpServer("127.0.0.1", free_port(), module_server=True)
        why = server.start()
        if why is not None:
            sys.exit(why)
        farm = LocalFarm(Path(tmp) / "farm", free_port(), not args.keep_farm_output, environment())
        base = f"rtmp://127.0.0.1:{server.port}/live"
        sources: dict[str, Any] = {
            "primary": publisher("white", f"{base}/primary"),
            "backup": publisher("gray", f"{base}/backup"),
        }
        try:
            wait(lambda: publishing_client(server, "backup"), 20, "the sources", every_s=0.2)
            figures, gap, kept, kept_alive = switches(farm, server, sources, args)
            with_continuity = cpu_of(running_pid(farm, kept_alive))
            farm.http.delete(f"/v1/restreams/{kept_alive}", headers=farm.bearer)
            plain = plain_twin(farm, server)
            without = cpu_of(running_pid(farm, plain))
            farm.http.delete(f"/v1/restreams/{plain}", headers=farm.bearer)
        finally:
            for process in sources.values():
                process.kill()
            farm.stop()
            server.stop()

    print(
        f"continuity against nginx-rtmp, input_loss_ms {args.loss_ms}, failback_s "
        f"{args.failback_s}, {args.rounds} rounds (p50 / max, from the kill or the restart):"
    )
    for what, label in (
        ("backup switch", "primary killed -> the switch puts the backup on air"),
        ("backup", "primary killed -> backup frames at the receiver"),
        ("slate switch", "backup killed too -> the switch puts the slate on air"),
        ("slate", "backup killed too -> slate at the receiver"),
        ("primary", "both back -> primary frames at the receiver"),
    ):
        values = figures[what]
        print(f"  {label:55} {statistics.median(values):.2f} s / {max(values):.2f} s")
    print(f"  {'longest gap between frames at the receiver':55} {gap:.2f} s")
    print(f"  {'one RTMP publishing session throughout':55} {'yes' if kept else 'NO'}")
    print(
        f"  CPU of the restream: {with_continuity:.3f} cpu-s/s with continuity "
        f"(2 stages, slate, switch), {without:.3f} without"
    )


if __name__ == "__main__":
    main()
