"""`streamfleet beat`: the reconciler. Runs a reconcile round every
`STREAMFLEET_RECONCILE_INTERVAL_S`, in this process; one beat per farm (a second one would
only skip rounds: each round takes a PostgreSQL advisory lock, see `common.reconcile.run`).

DESIGN has `celery beat` send `farm.reconcile` for a worker to run. Measured with
`bench/overhead.py`, celery beat's scheduler alone spent about 10 ms of CPU per second on
time-zone arithmetic to send one message a second, and the round, its message and its task
events made up a third of a node agent's CPU. A loop of its own runs the round where it is
scheduled: the nodes' workers run only their nodes.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from common import live
from common.celery_app import celery_sender, create_celery
from common.config import Settings
from common.db import Database, make_engine
from common.health import ProbeServer
from common.logs import configure_logging
from common.reconcile.health import FarmCollector, RoundLog
from common.reconcile.rest import Rest
from common.reconcile.run import reconcile
from common.wakeups import FARM, Wakeups

log = logging.getLogger(__name__)
LAPSE_SLACK_S = 0.01  # a round just after a lease lapses, not just before


def run_beat(settings: Settings, stopping: threading.Event, rounds: RoundLog | None = None) -> None:
    """A round every interval until `stopping` is set, and one more the moment the lease of a
    node that stopped answering lapses or a restream's schedule is due. A round that fails
    (PostgreSQL or Redis out of reach) is logged; the next one comes on the beat."""
    celery = create_celery(settings)
    db = Database(
        make_engine(
            settings.database_url,
            connections=2,
            statement_timeout_s=settings.db_statement_timeout_s,
        ),
        celery_sender(celery, settings.control_message_expiry_s),
    )
    client = live.connect(settings.redis_url)
    if rounds is not None:  # the farm's figures, on its /metrics (its second connection)
        rounds.registry.register(FarmCollector(db, rounds))
    interval = settings.reconcile_interval_s
    changes = Wakeups(db.engine, (FARM,))  # what tells a farm at rest that it is no longer
    changes.start()
    at_rest = Rest(changes.channel(FARM))  # a round that would find the same is not run
    due = time.monotonic()
    try:
        while not stopping.is_set():
            wake_in_s = None
            started = time.monotonic()
            summary = None
            try:
                summary = reconcile(db, client, settings, at_rest)
                wake_in_s = min(
                    (s for s in (summary.next_lapse_s, summary.next_due_s) if s is not None),
                    default=None,
                )
            except Exception:
                log.exception("reconcile round failed")
            if rounds is not None:
                rounds.record(summary, time.monotonic() - started)
            now = time.monotonic()
            if now >= due:  # the round on the beat (not one at a lapse): the next beat
                due = max(due + interval, now)  # after a slow round, at once
            wait_s = due - now
            if wake_in_s is not None:  # a lost node's restreams move the moment they may;
                wait_s = min(wait_s, wake_in_s + LAPSE_SLACK_S)  # a schedule is kept on time
            stopping.wait(max(0.0, wait_s))
    finally:
        changes.stop()
        client.close()
        db.engine.dispose()


def main() -> int:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    stopping = threading.Event()

    def stop(_signal: int, _frame: FrameType | None) -> None:
        # Not `stopping.set()` here: the handler may run while this thread holds the event's
        # lock (inside `wait`), and would wait for it forever.
        threading.Thread(target=stopping.set, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("reconciler: a round every %g s", settings.reconcile_interval_s)
    rounds = RoundLog(settings.reconcile_interval_s)
    probes = None
    if settings.beat_http_port:
        token = settings.metrics_token
        probes = ProbeServer(
            settings.beat_http_port,
            settings.beat_http_address,
            alive=rounds.alive,
            ready=rounds.ready,
            metrics=rounds.metrics,
            metrics_token=token.get_secret_value() if token else None,
        )
        probes.start()
        log.info("reconciler probes and metrics on port %d", probes.port)
    try:
        run_beat(settings, stopping, rounds)
    finally:
        if probes is not None:
            probes.stop()
    return 0
