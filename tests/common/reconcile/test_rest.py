"""A farm at rest (`common.reconcile.rest`): rounds that would find what the last one found are
not run, and every change ends the rest. Real PostgreSQL (its triggers and notifications) and
Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import redis
from sqlalchemy import Engine, text

from common import live
from common.accounts.principal import Principal, Role
from common.config import Settings
from common.db import Database, database_now
from common.definitions.restream import RestreamDefinition
from common.definitions.schedule import Schedule
from common.definitions.states import Phase
from common.lifecycle import reports, service
from common.lifecycle.reports import Attempt
from common.models import Restream
from common.reconcile.rest import Rest
from common.reconcile.run import RoundSummary, reconcile
from common.wakeups import FARM, Channel, Wakeups
from tests.support.nodes import renew, simulate_node
from tests.support.wait import wait_for

ADMIN = Principal("test", Role.ADMIN, None)
DEFINITION = RestreamDefinition.model_validate(
    {
        "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
        "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
    }
)


@pytest.fixture(autouse=True)
def redis_remembers(redis_client: redis.Redis) -> None:
    live.remember_since(redis_client, 60)


@pytest.fixture
def changes(engine: Engine) -> Iterator[Channel]:
    listener = Wakeups(engine, (FARM,), retry_s=0.1)
    listener.start()
    wait_for(lambda: listener.listening, timeout_s=5, what="listening")
    yield listener.channel(FARM)
    listener.stop()


class Rounds:
    def __init__(self, db: Database, client: redis.Redis, settings: Settings, rest: Rest):
        self.db, self.client, self.settings, self.rest = db, client, settings, rest

    def __call__(self) -> RoundSummary:
        return reconcile(self.db, self.client, self.settings, self.rest)

    def after_write(self) -> RoundSummary:
        """The next round, once the notifications of a write just committed have arrived: a
        transaction may send more than one (a savepoint's are sent apart), and one that came
        during a round would make the next one full too."""
        wait_for(self.rest.changes.woken, timeout_s=5, what="the notification")
        time.sleep(0.2)
        return self()


@pytest.fixture
def rounds(
    committing_db: Database, redis_client: redis.Redis, settings: Settings, changes: Channel
) -> Rounds:
    simulate_node(committing_db, redis_client, "a")
    wait_for(changes.woken, timeout_s=5, what="the node's notification")  # before the tests'
    time.sleep(0.2)
    return Rounds(committing_db, redis_client, settings, Rest(changes))


def test_a_farm_at_rest_rests_until_a_statement_writes_what_a_round_reads(
    rounds: Rounds, committing_db: Database
) -> None:
    assert not rounds().rested  # the first round runs
    assert rounds().rested and rounds().rested
    with committing_db.transaction() as session:  # writes, although it changes nothing
        session.execute(text("UPDATE nodes SET labels = labels"))
    assert not rounds.after_write().rested
    assert rounds().rested


def test_a_write_elsewhere_leaves_it_at_rest(rounds: Rounds, committing_db: Database) -> None:
    rounds()
    with committing_db.transaction() as session:
        session.execute(text("UPDATE projects SET name = name"))
    time.sleep(0.2)  # a notification, were one sent, would have come
    assert not rounds.rest.changes.woken()
    assert rounds().rested


def test_a_node_that_runs_something_else_or_stops_answering_ends_the_rest(
    rounds: Rounds, redis_client: redis.Redis
) -> None:
    rounds()
    assert rounds().rested
    renew(redis_client, "a", running={"r" * 24: 1})  # runs what it should not
    assert not (ended := rounds()).rested and ended.actions == {"Sync": 1}
    renew(redis_client, "a")
    rounds()
    assert rounds().rested
    lease = live.read_leases(redis_client, ["a"])["a"]
    live.write_lease(redis_client, lease.model_copy(update={"holder": "gone:1:abc"}), 30)
    assert not rounds().rested  # its holder has no connection to Redis: silent


def test_a_stopping_restream_is_never_at_rest(
    rounds: Rounds, committing_db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    """A stopping restream is finished once its FFmpeg has been gone for a while: time alone
    changes what a round does for it."""
    with committing_db.transaction() as session:
        restream = service.create(
            session, service.Farm(redis_client, settings), ADMIN, "r", DEFINITION, active=True
        )
    with committing_db.transaction() as session:
        reports.apply(session, Attempt(restream.id, 1, "a"), reports.Running())
    renew(redis_client, "a", running={restream.id: 1})
    rounds.after_write()
    assert rounds().rested  # running where it should
    with committing_db.transaction() as session:
        service.stop(session, ADMIN, restream.id)
    renew(redis_client, "a")  # its FFmpeg is gone at once
    assert rounds.after_write().actions == {}  # gone a moment ago: not yet confirmed
    assert not rounds().rested
    time.sleep(2 * settings.lease_renew_interval_s + 1)  # the plan's stop_confirm_s
    assert rounds().actions.get("FinishStop") == 1
    with committing_db.transaction() as session:
        stopped = session.get(Restream, restream.id)
        assert stopped is not None and stopped.phase is Phase.IDLE


def test_a_schedule_that_comes_due_ends_the_rest(
    rounds: Rounds, committing_db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    with committing_db.transaction() as session:
        # Far enough ahead that the create, its commit and the first round are done before
        # it is due, on a busy machine too.
        start = database_now(session) + timedelta(seconds=2)
        restream = service.create(
            session, service.Farm(redis_client, settings), ADMIN, "show", DEFINITION,
            active=False, schedule=Schedule(start_at=start),
        )  # fmt: skip
    due_s = rounds.after_write().next_due_s
    assert due_s is not None and 0 < due_s <= 2
    assert rounds().rested
    time.sleep(due_s + 0.05)
    assert rounds().actions.get("Assign") == 1  # started, and placed by the same round
    with committing_db.transaction() as session:
        started = session.get(Restream, restream.id)
        assert started is not None and started.active and started.phase is Phase.PLACED


def test_a_full_round_comes_at_least_every_longest_s(rounds: Rounds) -> None:
    rounds.rest.longest_s = 0.3
    rounds()
    assert rounds().rested
    time.sleep(0.35)
    assert not rounds().rested


def test_without_a_listener_every_round_runs(
    committing_db: Database, redis_client: redis.Redis, settings: Settings
) -> None:
    simulate_node(committing_db, redis_client, "a")
    unheard = Rounds(committing_db, redis_client, settings, Rest(Channel()))
    assert not any(unheard().rested for _ in range(3))
