"""Schedules: how late the control plane starts and stops restreams against their times.

    python bench/schedules.py [--restreams 20] [--run-s 2]

Starts a local farm, creates `--restreams` small test-video restreams whose schedules start
them one after the other (0.25 s apart, from 3 s ahead) and let each run `--run-s` seconds,
then reads each one's events: the "started by its schedule" event's time against its
start_at, and the "stopped by its schedule" event's time against the stop its run set (its
start + run-s). Both times are PostgreSQL's (the API stores the schedule, the reconciler, a
process of its own, carries it out). The reconciler wakes for the next due time (plus 10 ms),
as it does for a lapsing lease, rather than waiting for its next interval.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localfarm import LocalFarm, environment, percentile, wait  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restreams", type=int, default=20)
    parser.add_argument("--run-s", type=int, default=2)
    parser.add_argument("--keep-farm-output", action="store_true")
    args = parser.parse_args()

    started_late: list[float] = []
    stopped_late: list[float] = []
    with tempfile.TemporaryDirectory(prefix="sf-schedules-") as tmp:
        farm = LocalFarm(Path(tmp) / "farm", free_port(), not args.keep_farm_output, environment())
        ids: list[str] = []
        try:
            first = datetime.now(UTC) + timedelta(seconds=3)
            starts = {}
            for i in range(args.restreams):
                start_at = first + timedelta(seconds=0.25 * i)
                made = farm.http.post(
                    "/v1/restreams",
                    json={
                        "name": f"scheduled-{i}",
                        "input": {
                            "input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO",
                            "resolution_width": 160,
                            "resolution_height": 90,
                            "encoding_rate": 10,
                        },
                        "outputs": [
                            {
                                "output_type": "OUTPUT_TYPE_UDP_URL",
                                "output_stream_url": f"udp://127.0.0.1:{free_port()}",
                            }
                        ],
                        "schedule": {"start_at": start_at.isoformat(), "duration_s": args.run_s},
                    },
                    headers=farm.bearer,
                )
                made.raise_for_status()
                ids.append(made.json()["id"])
                starts[ids[-1]] = start_at
            last = first + timedelta(seconds=0.25 * args.restreams + args.run_s)
            time.sleep(max(0.0, (last - datetime.now(UTC)).total_seconds()))

            def reasons(restream_id: str) -> dict[str, datetime]:
                events = farm.http.get(
                    f"/v1/restreams/{restream_id}/events", headers=farm.bearer
                ).json()
                return {e["reason"].split(" (")[0]: datetime.fromisoformat(e["at"]) for e in events}

            wait(
                lambda: all("stopped by its schedule" in reasons(r) for r in ids),
                60,
                "every scheduled stop",
                every_s=0.2,
            )
            for restream_id in ids:
                times = reasons(restream_id)
                started = times["started by its schedule"]
                started_late.append((started - starts[restream_id]).total_seconds())
                stop_at = started + timedelta(seconds=args.run_s)
                stopped_late.append((times["stopped by its schedule"] - stop_at).total_seconds())
        finally:
            for restream_id in ids:  # leave an external database as it was found
                farm.http.delete(f"/v1/restreams/{restream_id}", headers=farm.bearer)
            farm.stop()

    print(f"schedules, {args.restreams} restreams, runs of {args.run_s} s (lateness):")
    for what, figures in (("start", started_late), ("stop", stopped_late)):
        print(
            f"  {what:5}  p50 {statistics.median(figures) * 1000:.0f} ms   "
            f"p99 {percentile(figures, 0.99) * 1000:.0f} ms   max {max(figures) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
