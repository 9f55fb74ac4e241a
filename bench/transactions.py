"""What each control-plane step of a start and a stop costs on its own, with nothing else
running: the farm's share of the start and stop figures of `bench/start_stop.py`, without
FFmpeg, the HTTP requests or a client's polling, and so with little of the machine's noise.

    python bench/transactions.py [--restreams 200]

Uses DATABASE_URL / REDIS_URL when set (a fresh database is created on that server and
dropped afterwards), else embedded PostgreSQL and Redis in a temporary directory. One node with
a live lease; `--restreams` stopped restreams (the job of `bench/start_stop.py`); then for
each, one after the other, each step timed from its first statement to its commit:

  API start      POST start's transaction: lock, place on the node, event; its message sent
  worker check   the worker's check that a start is its own (one statement)
  starting       the worker's report that FFmpeg spawned
  running        its report that media flows
  API stop       POST stop's transaction; its message sent
  ended          its report that FFmpeg is gone (the restream idle)

Control messages go to Redis as the API sends them (the node's queue is emptied as it goes).
Prints p50 and p90 of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import redis
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.localfarm import percentile  # noqa: E402
from bench.reconcile_scale import services  # noqa: E402
from bench.start_stop import JOB  # noqa: E402
from common import live  # noqa: E402
from common.accounts.principal import Principal, Role  # noqa: E402
from common.celery_app import celery_sender, create_celery, node_queue  # noqa: E402
from common.config import Settings  # noqa: E402
from common.db import Database, make_engine  # noqa: E402
from common.definitions.restream import RestreamDefinition  # noqa: E402
from common.ffmpeg.outcome import Outcome  # noqa: E402
from common.lifecycle import nodes, reports, service  # noqa: E402
from common.lifecycle.reports import Attempt  # noqa: E402
from common.migrate import upgrade  # noqa: E402
from common.nodes.capabilities import node_capabilities  # noqa: E402
from common.restreams import repository  # noqa: E402

NODE = "bench-transactions"
STEPS = ("API start", "worker check", "starting", "running", "API stop", "ended")


def add_node(db: Database, client: redis.Redis) -> None:
    """The node, registered as its worker does, with a live lease."""
    capabilities = node_capabilities(
        cores=64,
        ffmpeg={"encoders": ["libx264", "aac"], "protocols": ["udp"], "filters": ["lavfi"]},
        cpu_millicores=1_000_000,
    )
    with db.transaction() as session:
        nodes.register(session, NODE, capabilities, {})
    lease = live.NodeLease(node=NODE, renewed_at=time.time(), capabilities=capabilities)
    live.write_lease(client, lease, 3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restreams", type=int, default=200)
    args = parser.parse_args()
    times: dict[str, list[float]] = {step: [] for step in STEPS}

    def timed(step: str, work: Callable[[], object]) -> None:
        started = time.perf_counter()
        work()
        times[step].append(time.perf_counter() - started)

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sf-tx-")))
        database_url, redis_url = services(stack, tmp)
        upgrade(database_url)
        settings = Settings(database_url=database_url, redis_url=redis_url)
        db = Database(make_engine(database_url), celery_sender(create_celery(settings), 30))
        stack.callback(db.dispose)
        client = live.connect(redis_url)  # a Redis in use keeps what it holds
        stack.callback(client.delete, live.lease_key(NODE), node_queue(NODE))
        add_node(db, client)
        farm = service.Farm(client, settings)
        principal = Principal("bench", Role.ADMIN, None)
        definition = RestreamDefinition.model_validate(
            {"input": JOB["input"], "outputs": [JOB["output"]]}
        )
        ids = []
        for i in range(args.restreams):
            with db.transaction() as session:
                ids.append(
                    service.create(session, farm, principal, f"r{i}", definition, active=False).id
                )

        def step(name: str, work: Callable[[Session], object]) -> None:
            def run() -> None:
                with db.transaction() as session:
                    work(session)

            timed(name, run)

        def start_and_stop(rid: str) -> None:
            step("API start", lambda s: service.start(s, farm, principal, rid))
            with db.reading() as session:
                restream = repository.get(session, rid, None)
                assert restream is not None
                assert restream.node_name == NODE
                attempt = Attempt(rid, restream.generation, NODE)

            def check() -> None:
                with db.reading() as session:  # as the worker does
                    assert reports.should_run(session, attempt) is not None

            timed("worker check", check)
            step("starting", lambda s: reports.apply(s, attempt, reports.Starting(1, restarts=0)))
            step("running", lambda s: reports.apply(s, attempt, reports.Running()))
            step("API stop", lambda s: service.stop(s, principal, rid))
            ended = reports.Ended(Outcome.STOPPED, exit_code=None)
            step("ended", lambda s: reports.apply(s, attempt, ended))
            client.delete(node_queue(NODE))

        for rid in ids:
            start_and_stop(rid)

    print(f"a start's and a stop's steps, one restream at a time, {args.restreams} restreams:")
    for name in STEPS:
        ms = [t * 1000 for t in times[name]]
        print(f"{name:<14} p50 {statistics.median(ms):6.2f} ms   p90 {percentile(ms, 0.9):6.2f} ms")


if __name__ == "__main__":
    main()
