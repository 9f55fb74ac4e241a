"""What the farm itself costs per running FFmpeg: CPU seconds per FFmpeg per minute.

    python bench/overhead.py [--counts 20,100] [--window 30] [--ffmpeg PATH]

Starts nginx with the RTMP module (Debian's libnginx-mod-rtmp) and one FFmpeg publishing a
small test signal to it (160x90 at 10 fps, H.264 + AAC), and `streamfleet up` in a temporary
directory (embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set; the node
declares ample CPU so placement refuses none). Then for each count it runs that many copy-mode
restreams pulling that stream and sending it as MPEG-TS over UDP (FFmpeg itself fits on a small
machine by the hundred), waits until the API says all of them run, lets them settle, and reads
the CPU time (user + system, from /proc) each part spent over `--window` seconds: the worker
(node agent: supervisor, progress parsing, lease and statistics writes, reports; the
reconcile rounds run there too), the API, the beat that schedules reconcile rounds,
PostgreSQL, Redis, and the FFmpeg processes themselves. Prints each as cpu-s per running
FFmpeg per minute: a flat figure across counts is a per-process cost that does not grow
with the count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localfarm import LocalFarm, environment, wait  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402
from common.ffmpeg.binary import resolve_ffmpeg  # noqa: E402

NGINX_RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
UDP_SINK = {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"}
TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, CPU seconds so far) of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        cpu = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        found[int(entry.name)] = (int(fields[1]), command or stat.split()[1], cpu)
    return found


# What each part's command line says (the first that matches names it).
PARTS = (
    ("ffmpeg", "FFmpeg"),
    ("postgres", "PostgreSQL"),
    ("redis", "Redis"),
    ("api.serve", "API"),
    (" worker", "worker"),
    (" beat", "reconciler beat"),
)


def _part(command: str) -> str:
    return next((part for needle, part in PARTS if needle in command), "streamfleet up")


def cpu_by_part(root: int, data_dir: Path) -> dict[str, float]:
    """CPU seconds so far of the farm's processes: `root`'s descendants, and the embedded
    PostgreSQL and Redis (daemons of their own, found by their data directory)."""
    processes = _processes()
    children = defaultdict(list)
    for pid, (parent, _, _) in processes.items():
        children[parent].append(pid)
    roots = [root] + [pid for pid, (_, command, _) in processes.items() if str(data_dir) in command]
    seen: set[int] = set()
    totals: dict[str, float] = defaultdict(float)
    while roots:
        pid = roots.pop()
        if pid in seen or pid not in processes:
            continue
        seen.add(pid)
        totals[_part(processes[pid][1])] += processes[pid][2]
        roots.extend(children[pid])
    return totals


@contextlib.contextmanager
def rtmp_source(directory: Path, ffmpeg: str) -> Iterator[str]:
    """nginx-rtmp with one publisher of a small test signal; yields the stream's URL."""
    if shutil.which("nginx") is None or not Path(NGINX_RTMP_MODULE).exists():
        raise SystemExit("needs nginx with the RTMP module (Debian: libnginx-mod-rtmp)")
    port = free_port()
    directory.mkdir(parents=True)
    (directory / "nginx.conf").write_text(
        f"load_module {NGINX_RTMP_MODULE};\ndaemon off;\nmaster_process off;\n"
        f"error_log {directory}/error.log warn;\npid {directory}/nginx.pid;\n"
        "events { worker_connections 1024; }\n"
        f"rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n"
    )
    url = f"rtmp://127.0.0.1:{port}/live/source"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    server = subprocess.Popen(["nginx", "-p", str(directory), "-c", "nginx.conf"], **quiet)
    time.sleep(0.5)
    publisher = subprocess.Popen(
        [ffmpeg, "-re", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=10",
         "-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:v", "libx264", "-preset", "veryfast",
         "-g", "20", "-b:v", "100k", "-c:a", "aac", "-b:a", "32k", "-f", "flv", url],
        **quiet,
    )  # fmt: skip
    try:
        yield url
    finally:
        for process in (publisher, server):
            process.terminate()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="20,100")
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--ffmpeg", help="FFmpeg binary for the worker (FFMPEG_BINARY)")
    parser.add_argument("--keep-farm-output", action="store_true", help="show the farm's logs")
    args = parser.parse_args()
    env = environment(STREAMFLEET_CPU_MILLICORES="1000000")
    if args.ffmpeg:
        env["FFMPEG_BINARY"] = args.ffmpeg
    counts = [int(c) for c in args.counts.split(",")]

    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp,
        rtmp_source(Path(tmp) / "nginx", resolve_ffmpeg(args.ffmpeg)) as source,
    ):
        data_dir = Path(tmp) / "farm"
        farm = LocalFarm(data_dir, free_port(), not args.keep_farm_output, env)
        ids: list[str] = []
        job = {
            "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": source},
            "output": UDP_SINK,
            "active": True,
        }
        try:
            for count in counts:
                while len(ids) < count:
                    body = {**job, "restream_name": f"overhead-{len(ids)}-{time.time_ns()}"}
                    ids.append(farm.post("/api/restream/create", body)["id"])

                def all_running(n: int = count) -> bool:
                    page = farm.http.get(
                        "/v1/restreams", params={"limit": 500}, headers=farm.bearer
                    ).json()
                    return sum(r["state"] == "running" for r in page["items"]) >= n

                wait(all_running, 120, f"{count} restreams running", every_s=0.5)
                time.sleep(5)  # let starts settle
                before, started = cpu_by_part(farm.process.pid, data_dir), time.monotonic()
                time.sleep(args.window)
                after, elapsed = cpu_by_part(farm.process.pid, data_dir), time.monotonic() - started
                per = {p: (after[p] - before.get(p, 0.0)) / count / (elapsed / 60) for p in after}
                rows.append((count, per))
            for restream_id in ids:  # leave an external database as it was found
                farm.http.request(
                    "DELETE", "/api/restream/remove", json={"id": restream_id}, headers=farm.callaba
                )
        finally:
            farm.stop()

    parts = ["worker", "API", "reconciler beat", "streamfleet up", "PostgreSQL", "Redis"]
    print(f"cpu-s per running FFmpeg per minute ({args.window:g} s windows):")
    print(f"  {'running':>8}  " + "  ".join(f"{p:>15}" for p in [*parts, "farm", "FFmpeg"]))
    for count, per in rows:
        farm_total = sum(per.get(p, 0.0) for p in parts)
        figures = [per.get(p, 0.0) for p in parts] + [farm_total, per.get("FFmpeg", 0.0)]
        print(f"  {count:>8}  " + "  ".join(f"{v:15.4f}" for v in figures))


if __name__ == "__main__":
    main()
