"""Measure the CPU cost constants of the cost model (common/nodes/capacity.py) on this machine.

    python bench/calibrate_cost.py [--seconds 10] [--ffmpeg PATH]

For each piece the farm runs, FFmpeg processes `--seconds` of 1280x720 at 30 fps as fast as it
can, and its CPU time (user + system, from wait4) divided by the media duration gives the
cores that piece needs to keep up in real time. Divided by the pixel rate (width x height x
fps, in megapixels per second) that is millicores per Mpx/s, the unit of the cost model:

  test source    generating testsrc2 (the INPUT_TYPE_GENERATE_TEST_VIDEO signal)
  decode         decoding H.264 (what a transcode of a pulled stream does first)
  libx264/<p>    encoding, per preset (test source subtracted)
  libx265/<p>    encoding, per preset (test source subtracted)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.ffmpeg.binary import resolve_ffmpeg  # noqa: E402

WIDTH, HEIGHT, FPS = 1280, 720, 30
MPX_S = WIDTH * HEIGHT * FPS / 1e6


def cpu_seconds(argv: list[str]) -> float:
    """CPU time (user + system) FFmpeg spent on `argv`."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"FFmpeg failed: {' '.join(argv)}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--ffmpeg", help="FFmpeg binary (default: as the worker would pick)")
    args = parser.parse_args()
    ffmpeg = resolve_ffmpeg(args.ffmpeg)
    base = [ffmpeg, "-hide_banner", "-nostats", "-y", "-loglevel", "error"]
    source = [
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={args.seconds}"
    ]  # fmt: skip

    def per_mpx(cpu_s: float) -> float:
        cores = cpu_s / args.seconds
        return cores * 1000 / MPX_S

    results: dict[str, float] = {}
    generation = cpu_seconds([*base, *source, "-f", "null", "-"])
    results["test source"] = per_mpx(generation)
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "sample.ts"
        cpu_seconds([*base, *source, "-c:v", "libx264", "-preset", "veryfast", str(sample)])
        results["decode h264"] = per_mpx(cpu_seconds([*base, "-i", str(sample), "-f", "null", "-"]))
    for codec, presets in (
        ("libx264", ("ultrafast", "veryfast", "medium")),
        ("libx265", ("ultrafast", "veryfast", "medium")),
    ):
        for preset in presets:
            spent = cpu_seconds(
                [*base, *source, "-c:v", codec, "-preset", preset, "-f", "null", "-"]
            )
            results[f"{codec}/{preset}"] = per_mpx(spent - generation)

    print(f"FFmpeg {ffmpeg}, {WIDTH}x{HEIGHT}@{FPS} = {MPX_S:.1f} Mpx/s, {os.cpu_count()} cores")
    print(f"{'piece':<20} {'millicores per Mpx/s':>22} {'1080p30 needs':>16}")
    for name, value in results.items():
        print(f"{name:<20} {value:>22.1f} {value * 1920 * 1080 * 30 / 1e6:>12.0f} mc")


if __name__ == "__main__":
    main()
