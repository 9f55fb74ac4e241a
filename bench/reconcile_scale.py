"""How the reconciler and placement scale: 200 nodes, 10,000 restreams, no FFmpeg.

    python bench/reconcile_scale.py [--nodes 200] [--restreams 10000] [--pending 2000]

Uses DATABASE_URL / REDIS_URL when set (a fresh database is created on that server and
dropped afterwards), else embedded PostgreSQL and Redis in a temporary directory. Node leases
are simulated in Redis; every restream is already placed and running on some node, as the
nodes' leases report. Prints:

  round      one reconcile round over all of it (plan + apply), p50 and max of 10 rounds
  batch      a round that has `--pending` restreams to place: placements per second
  requests   placements through the service one request at a time (what the API does for
             POST start), each its own transaction: placements per second
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, make_url, text, update  # noqa: E402

from common import live  # noqa: E402
from common.accounts.principal import Principal, Role  # noqa: E402
from common.accounts.service import ensure_project  # noqa: E402
from common.cli.localfarm import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from common.config import Settings  # noqa: E402
from common.db import Database, make_engine  # noqa: E402
from common.definitions.restream import RestreamDefinition  # noqa: E402
from common.definitions.states import NodeState, RestreamState  # noqa: E402
from common.ids import new_id  # noqa: E402
from common.lifecycle import service  # noqa: E402
from common.migrate import upgrade  # noqa: E402
from common.models import Node, Restream  # noqa: E402
from common.nodes.capabilities import node_capabilities, requirements  # noqa: E402
from common.reconcile.run import reconcile  # noqa: E402

DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_RTMP_URL", "input_stream_url": "rtmp://src/live/k"},
        "transcoding": {"video_transcoding": "libx264", "preset": "veryfast", "frame_width": 640},
        "outputs": [
            {"output_type": "OUTPUT_TYPE_OTHER_RTMP_URL", "output_stream_url": "rtmp://x/live"}
        ],
    }
)
NODE_MILLICORES = 1_000_000  # room for everything: this measures the bookkeeping, not fitting


def services(stack: ExitStack, tmp: Path) -> tuple[str, str]:
    database_url = os.environ.get("DATABASE_URL")
    if database_url is None:
        database_url = stack.enter_context(_embedded_pg(tmp)).url
    admin = create_engine(service_url(database_url), isolation_level="AUTOCOMMIT")
    name = f"sf_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    stack.callback(drop)
    url = make_url(service_url(database_url)).set(database=name).render_as_string(False)
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None:
        redis = EmbeddedRedis.start(tmp / "redis")
        stack.callback(redis.stop)
        redis_url = redis.url
    return url, redis_url


class _embedded_pg:  # noqa: N801  (a context manager used like a function)
    def __init__(self, tmp: Path) -> None:
        self.server = EmbeddedPostgres.start(tmp / "pg")
        self.url = self.server.url

    def __enter__(self) -> _embedded_pg:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.stop()


def service_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def populate(db: Database, client: Any, nodes: int, restreams: int) -> list[str]:
    names = [f"n{i:03d}" for i in range(nodes)]
    capabilities = node_capabilities(
        cores=64,
        ffmpeg={"encoders": ["libx264", "aac"], "protocols": ["rtmp", "tcp"]},
        cpu_millicores=NODE_MILLICORES,
    )
    needs = requirements(DEFINITION)
    stored = service.stored(DEFINITION)
    running: dict[str, dict[str, int]] = {name: {} for name in names}
    with db.transaction() as session:
        project = ensure_project(session, "bench").id
        session.execute(
            insert(Node),
            [{"name": n, "state": NodeState.ACTIVE, "capabilities": capabilities, "labels": {}}
             for n in names],
        )  # fmt: skip
        rows = []
        for i in range(restreams):
            node = names[i % nodes]
            rid = new_id()
            running[node][rid] = 1
            rows.append(
                {
                    "id": rid, "project_id": project, "name": f"r{i}", "definition": stored,
                    "active": True, "generation": 1, "node_name": node,
                    "state": RestreamState.RUNNING,
                    "reserved_millicores": needs.cost.cpu_millicores,
                }
            )  # fmt: skip
        session.execute(insert(Restream), rows)
    for name in names:
        live.write_lease(
            client,
            live.NodeLease(
                node=name, renewed_at=time.time(), capabilities=capabilities, running=running[name]
            ),
            3600,
        )
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--restreams", type=int, default=10_000)
    parser.add_argument("--pending", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sf-scale-")))
        database_url, redis_url = services(stack, tmp)
        upgrade(database_url)
        settings = Settings(database_url=database_url, redis_url=redis_url)
        sent: list[Any] = []
        db = Database(make_engine(database_url), sent.append)
        stack.callback(db.dispose)
        client = live.connect(redis_url)
        client.flushdb()
        live.remember_since(client, 60)  # an established farm: rounds judge its nodes
        populate(db, client, args.nodes, args.restreams)

        rounds = []
        for _ in range(10):
            summary = reconcile(db, client, settings)
            rounds.append(summary.duration_ms)
        assert not set(summary.actions) - {"Sync"}, summary.actions

        # A batch to place: the reconciler's round with `--pending` waiting restreams.
        with db.transaction() as session:
            ids = [
                rid
                for (rid,) in session.execute(
                    text("SELECT id FROM restreams ORDER BY id LIMIT :n"), {"n": args.pending}
                )
            ]
            session.execute(
                update(Restream)
                .where(Restream.id.in_(ids))
                .values(state=RestreamState.PENDING, node_name=None, reserved_millicores=0)
            )
        started = time.perf_counter()
        batch = reconcile(db, client, settings)
        batch_s = time.perf_counter() - started
        assert batch.actions.get("Assign") == args.pending, batch.actions

        # One placement per request, as POST start does.
        principal = Principal("bench", Role.ADMIN, None)
        farm = service.Farm(client, settings)
        with db.transaction() as session:
            session.execute(
                update(Restream)
                .where(Restream.id.in_(ids[: args.requests]))
                .values(state=RestreamState.IDLE, active=False, node_name=None)
            )
        started = time.perf_counter()
        for rid in ids[: args.requests]:
            with db.transaction() as session:
                service.start(session, farm, principal, rid)
        requests_s = time.perf_counter() - started

    print(f"reconciler and placement at scale: {args.nodes} nodes, {args.restreams} restreams")
    print(
        f"round (nothing to do)     p50 {statistics.median(rounds):7.1f} ms   "
        f"max {max(rounds):7.1f} ms"
    )
    print(
        f"batch of {args.pending} placements  {batch_s * 1000:7.1f} ms   "
        f"{args.pending / batch_s:7.0f} placements/s"
    )
    print(
        f"{args.requests} single starts       {requests_s * 1000:7.1f} ms   "
        f"{args.requests / requests_s:7.0f} placements/s"
    )


if __name__ == "__main__":
    main()
