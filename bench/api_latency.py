"""How long the API takes to answer reads, as a client sees it, with many restreams defined.

    python bench/api_latency.py [--restreams 520] [--requests 200]

Starts `streamfleet up` in a temporary directory (embedded PostgreSQL and Redis unless
DATABASE_URL / REDIS_URL are set), defines `--restreams` restreams through the Callaba API
(not started), then times, one request at a time over one kept-alive connection:

  GET /v1/restreams/{id}          one restream (native API, an API key)
  GET /v1/restreams (all pages)   every restream, pages of 1000 (native API: the most a page holds)
  POST /api/restream/getAll       every restream (Callaba API, a login token)
  POST /api/restream/getById      one restream (Callaba API)
  POST /api/restream/stop         a write: a stop of one not running (its transaction and
                                  commit, no worker to tell)
  GET /healthz                    the floor: a request that reads nothing

Each is timed until its whole response has arrived (the client's own parsing of it is not
counted). Prints p50/p90/max in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localfarm import LocalFarm, environment, percentile  # noqa: E402
from common.cli.localfarm import free_port  # noqa: E402

JOB = {
    "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://10.0.0.1/live/a"},
    "output": {"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://127.0.0.1:9"},
    "active": False,
}


def timed(call: Callable[[], httpx.Response], requests: int) -> list[float]:
    call().raise_for_status()  # warm
    times = []
    for _ in range(requests):
        sent = time.perf_counter()
        call().raise_for_status()
        times.append(time.perf_counter() - sent)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restreams", type=int, default=520)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--keep-farm-output", action="store_true", help="show the farm's logs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        farm = LocalFarm(Path(tmp) / "farm", free_port(), not args.keep_farm_output, environment())
        try:
            ids = [
                farm.post("/api/restream/create", {**JOB, "restream_name": f"bench-{i}"})["id"]
                for i in range(args.restreams)
            ]
            http = farm.http

            def native_all() -> httpx.Response:
                for offset in range(0, args.restreams, 1000):  # the count is known: no parsing
                    page = http.get(
                        "/v1/restreams",
                        params={"limit": 1000, "offset": offset},
                        headers=farm.bearer,
                    )
                    if page.is_error:
                        break
                return page

            one = ids[len(ids) // 2]
            figures = {
                "GET /v1/restreams/{id}": lambda: http.get(
                    f"/v1/restreams/{one}", headers=farm.bearer
                ),
                "GET /v1/restreams (all pages)": native_all,
                "POST /api/restream/getAll": lambda: http.post(
                    "/api/restream/getAll", json={}, headers=farm.callaba
                ),
                "POST /api/restream/getById": lambda: http.post(
                    "/api/restream/getById", json={"id": one}, headers=farm.callaba
                ),
                "POST /api/restream/stop (a write)": lambda: http.post(
                    "/api/restream/stop", json={"id": one}, headers=farm.callaba
                ),
                "GET /healthz (the floor)": lambda: http.get("/healthz"),
            }
            results = {name: timed(call, args.requests) for name, call in figures.items()}
            for restream_id in ids:  # leave an external database as it was found
                farm.http.request(
                    "DELETE", "/api/restream/remove", json={"id": restream_id}, headers=farm.callaba
                )
        finally:
            farm.stop()

    print(f"API latency with {args.restreams} restreams, {args.requests} requests each:")
    for name, values in results.items():
        ms = [v * 1000 for v in values]
        print(
            f"  {name:<32} p50 {statistics.median(ms):7.2f} ms   p90 {percentile(ms, 0.9):7.2f} ms"
            f"   max {max(ms):7.2f} ms"
        )


if __name__ == "__main__":
    main()
