"""A node's SRT server under load, next to the same streams through FFmpeg listen inputs.

    python bench/srt_server.py [--streams 4] [--players 2] [--mbps 5] [--window 20] [--ffmpeg PATH]

Each of N publishers sends an MPEG-TS stream at `--mbps` (a small H.264 clip, looped by copy and
padded to a constant rate with `-muxrate`) as an SRT caller, as OBS does, and each stream has
`--players` players: `srt-live-transmit` callers reporting libsrt's own counters (received,
lost, dropped). Two set-ups, one after the other:

- the SRT server module (`worker/srt_server.py`: the router on libsrt), one UDP port, streams
  routed by streamid (`publisher/bench/sN`, `receiver/bench/sN`);
- FFmpeg listen inputs, as the farm runs an INPUT_TYPE_SRT_LISTEN restream: per stream one
  FFmpeg listening for its publisher and copying to its players through the tee muxer, each an
  SRT listener of its own.

Prints the CPU of the server side (user + system from /proc, over `--window` seconds, as % of
one core), and per player its received bitrate, packets lost and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.cli.localfarm import free_port  # noqa: E402
from common.definitions.server import ServerKind, ServerSpec  # noqa: E402
from common.ffmpeg.binary import resolve_ffmpeg  # noqa: E402
from worker.srt_server import SrtServer  # noqa: E402

TICKS = 100.0  # USER_HZ


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def make_clip(ffmpeg: str, directory: Path) -> Path:
    clip = directory / "clip.ts"
    subprocess.run(
        [ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-t", "10",
         "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "50", str(clip)],
        check=True,
    )  # fmt: skip
    return clip


def publisher(ffmpeg: str, clip: Path, url: str, mbps: float) -> list[str]:
    return [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(clip),
        "-c", "copy", "-f", "mpegts", "-muxrate", str(int(mbps * 1_000_000)), url,
    ]  # fmt: skip


def player(url: str, stats: Path) -> list[str]:
    return [
        "srt-live-transmit", "-q", "-s:500", "-f", "-pf:json", f"-statsout:{stats}",
        url, "file://con",
    ]  # fmt: skip


@contextlib.contextmanager
def processes(argvs: list[list[str]]) -> Iterator[list[subprocess.Popen[bytes]]]:
    started = [
        subprocess.Popen(a, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for a in argvs
    ]
    try:
        yield started
    finally:
        for process in started:
            process.kill()
            process.wait()


def last_stats(path: Path) -> dict[str, float]:
    """libsrt's counters at the player's last report."""
    text = path.read_text() if path.exists() else ""
    reports = [line for line in text.replace("}{", "}\n{").splitlines() if line.strip()]
    for line in reversed(reports):
        with contextlib.suppress(ValueError):
            report = json.loads(line.rstrip(","))
            receive = report.get("recv", {})
            return {
                "mbps": float(receive.get("mbitRate", 0.0)),
                "lost": float(receive.get("packetsLost", 0)),
                "dropped": float(receive.get("packetsDropped", 0)),
                "received": float(receive.get("packets", 0)),
            }
    return {"mbps": 0.0, "lost": 0.0, "dropped": 0.0, "received": 0.0}


def measure(
    server_pids: list[int], players: list[list[str]], stats: list[Path], window: float
) -> tuple[float, list[dict[str, float]]]:
    with processes(players):
        time.sleep(3)  # connected, flowing
        before = cpu_s(server_pids)
        time.sleep(window)
        used = cpu_s(server_pids) - before
    return 100 * used / window, [last_stats(s) for s in stats]


def router_run(args: argparse.Namespace, ffmpeg: str, clip: Path, work: Path) -> None:
    port = free_port()
    server = SrtServer("127.0.0.1", ServerSpec(kind=ServerKind.SRT, name="bench", port=port))
    why = server.start()
    if why is not None:
        sys.exit(f"the SRT server cannot run: {why}")
    try:
        base = f"srt://127.0.0.1:{port}?streamid="
        publishers = [
            publisher(ffmpeg, clip, f"{base}publisher/bench/s{n}", args.mbps)
            for n in range(args.streams)
        ]
        stats = [
            work / f"router-{n}-{p}.json" for n in range(args.streams) for p in range(args.players)
        ]
        players = [
            player(f"{base}receiver/bench/s{n}", stats[n * args.players + p])
            for n in range(args.streams)
            for p in range(args.players)
        ]
        with processes(publishers):
            time.sleep(2)
            assert server.process is not None
            cpu, seen = measure([server.process.pid], players, stats, args.window)
    finally:
        server.stop()
    report("SRT server module (libsrt router)", cpu, seen)


def ffmpeg_run(args: argparse.Namespace, ffmpeg: str, clip: Path, work: Path) -> None:
    relays, publishers, players, stats = [], [], [], []
    for n in range(args.streams):
        listen = free_port()
        outs = [free_port() for _ in range(args.players)]
        tee = "|".join(f"[f=mpegts]srt://127.0.0.1:{o}?mode=listener" for o in outs)
        relays.append([
            ffmpeg, "-hide_banner", "-loglevel", "error",
            "-i", f"srt://127.0.0.1:{listen}?mode=listener",
            "-map", "0", "-c", "copy", "-f", "tee", tee,
        ])  # fmt: skip
        publishers.append(publisher(ffmpeg, clip, f"srt://127.0.0.1:{listen}", args.mbps))
        for p, out in enumerate(outs):
            stats.append(work / f"ffmpeg-{n}-{p}.json")
            players.append(player(f"srt://127.0.0.1:{out}", stats[-1]))
    with processes(relays) as running:
        time.sleep(1)
        with processes(publishers):
            time.sleep(2)
            cpu, seen = measure([r.pid for r in running], players, stats, args.window)
    report("FFmpeg listen inputs (one FFmpeg per stream, tee to listeners)", cpu, seen)


def report(title: str, cpu: float, seen: list[dict[str, float]]) -> None:
    mbps = [s["mbps"] for s in seen]
    print(f"{title}:")
    print(f"  CPU of the server side: {cpu:.1f} % of one core")
    print(
        f"  per player: {min(mbps):.2f}-{max(mbps):.2f} Mbit/s (mean {sum(mbps) / len(mbps):.2f}),"
        f" lost {sum(s['lost'] for s in seen):.0f} packets,"
        f" dropped {sum(s['dropped'] for s in seen):.0f}, of {sum(s['received'] for s in seen):.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--players", type=int, default=2)
    parser.add_argument("--mbps", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--ffmpeg", default=None)
    args = parser.parse_args()
    if shutil.which("srt-live-transmit") is None:
        sys.exit("srt-live-transmit is needed for the players (Debian: srt-tools)")
    ffmpeg = resolve_ffmpeg(args.ffmpeg)
    print(
        f"{args.streams} publishers at {args.mbps:g} Mbit/s, {args.players} players each, "
        f"{args.window:g} s; FFmpeg {ffmpeg}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        clip = make_clip(ffmpeg, work)
        router_run(args, ffmpeg, clip, work)
        ffmpeg_run(args, ffmpeg, clip, work)


if __name__ == "__main__":
    main()
