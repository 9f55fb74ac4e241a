"""How fast the farm-wide placement lock passes from one placement to the next when many want
it at once (a burst of API starts, the reconciler's round among them):

    python bench/placement_lock.py [--contenders 10 40] [--hold-ms 5] [--rounds 5]

Uses DATABASE_URL when set (a fresh database is created on that server and dropped after),
else an embedded PostgreSQL in a temporary directory. Each round starts `contenders` threads
at once, each a transaction that takes the lock and holds it `hold-ms`, as a placement does;
prints, p50 over the rounds, how long until all were done against the floor (one after the
other with no gap: contenders times hold), and the longest any one waited.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reconcile_scale import services  # noqa: E402
from common.db import Database, make_engine  # noqa: E402
from common.lifecycle.placement_lock import lock_placement  # noqa: E402


def burst(db: Database, contenders: int, hold_s: float) -> tuple[float, float]:
    """One round: how long until all were done, and the longest one's time."""
    took: list[float] = []
    gate = threading.Barrier(contenders + 1)

    def place() -> None:
        gate.wait()
        began = time.perf_counter()
        with db.transaction() as session:
            lock_placement(session)
            time.sleep(hold_s)
        took.append(time.perf_counter() - began)

    threads = [threading.Thread(target=place) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    gate.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, max(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contenders", type=int, nargs="+", default=[10, 40])
    parser.add_argument("--hold-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        database_url, _ = services(stack, Path(tmp))
        engine = make_engine(database_url, connections=max(args.contenders) + 2)
        stack.callback(engine.dispose)
        db = Database(engine, lambda _message: None)
        for contenders in args.contenders:
            burst(db, contenders, args.hold_ms / 1000)  # connections opened, not timed
            rounds = [burst(db, contenders, args.hold_ms / 1000) for _ in range(args.rounds)]
            done = statistics.median(r[0] for r in rounds) * 1000
            slowest = statistics.median(r[1] for r in rounds) * 1000
            floor = contenders * args.hold_ms
            print(
                f"{contenders} placements at once, each holding it {args.hold_ms:g} ms: all done "
                f"{done:.0f} ms (floor {floor:.0f} ms, {done - floor:+.0f}), the longest "
                f"{slowest:.0f} ms"
            )


if __name__ == "__main__":
    main()
