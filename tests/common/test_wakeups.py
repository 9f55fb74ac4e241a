"""Wake-ups from PostgreSQL (the triggers of migration 0012, LISTEN/NOTIFY) on a real server:
what wakes which loop, what wakes none, and a lost connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
import redis
from sqlalchemy import text, update
from sqlalchemy.engine import Engine, make_url

from common import wakeups as wakeups_module
from common import webhooks
from common.db import Database, database_now
from common.definitions.server import ServerKind
from common.models import Project, Server, Webhook, WebhookDelivery
from common.wakeups import SERVERS, WEBHOOKS, Channel, Wakeups
from tests.support.wait import wait_for
from worker.servers import NodeServers
from worker.webhooks import Look, WebhookSender

PROJECT = "p" * 24
QUIET_S = 0.3  # long enough for a notification to arrive, if one were sent


@pytest.fixture
def wakeups(engine: Engine) -> Iterator[Wakeups]:
    listener = Wakeups(engine, retry_s=0.1)
    listener.start()
    wait_for(lambda: listener.listening, timeout_s=5, what="listening")
    for channel in listener.channels.values():
        assert channel.wait(1)  # every loop is woken once when listening starts
    yield listener
    listener.stop()


def _project(db: Database) -> None:
    with db.transaction() as session:
        session.add(Project(id=PROJECT, name="wakes"))


def test_a_server_written_wakes_the_servers_loop_alone(
    wakeups: Wakeups, committing_db: Database
) -> None:
    servers, senders = wakeups.channel(SERVERS), wakeups.channel(WEBHOOKS)
    _project(committing_db)
    assert not servers.wait(QUIET_S) and not senders.wait(0)  # a project concerns neither
    with committing_db.transaction() as session:
        session.add(Server(id="s" * 24, project_id=PROJECT, kind=ServerKind.SRT, name="a",
                           spec={"kind": "srt"}))  # fmt: skip
    assert servers.wait(5)
    assert not senders.wait(QUIET_S)
    with committing_db.transaction() as session:  # a statement that changes no row
        session.execute(update(Server).where(Server.id == "x" * 24).values(active=False))
    assert not servers.wait(QUIET_S)
    with committing_db.transaction() as session:
        session.execute(update(Server).values(active=False))
    assert servers.wait(5)


def test_a_delivery_written_or_a_webhook_resumed_wakes_the_sender(
    wakeups: Wakeups, committing_db: Database
) -> None:
    senders = wakeups.channel(WEBHOOKS)
    _project(committing_db)
    with committing_db.transaction() as session:
        session.add(Webhook(id="w" * 24, project_id=PROJECT, url="http://h.example/",
                            secret="s" * 20, kinds=[], active=False))  # fmt: skip
    assert not senders.wait(QUIET_S)  # a paused webhook: nothing to send
    with committing_db.transaction() as session:
        now = database_now(session)
        session.add(WebhookDelivery(webhook_id="w" * 24, event_id=1, body={},
                                    state=webhooks.PENDING, attempts=0, next_at=now,
                                    give_up_at=now + timedelta(hours=1)))  # fmt: skip
    assert senders.wait(5)
    with committing_db.transaction() as session:
        session.execute(update(Webhook).values(active=True))
    assert senders.wait(5)  # its deliveries are due now
    with committing_db.transaction() as session:
        session.execute(update(Webhook).values(active=False))
    assert not senders.wait(QUIET_S)  # paused: nothing more to send


def test_a_lost_connection_wakes_every_loop_then_listens_again(
    wakeups: Wakeups, committing_db: Database
) -> None:
    """While it does not listen, the loops poll: they are woken to start at once. Once it
    listens again, they are woken again (for what changed meanwhile), and changes wake them."""
    with committing_db.transaction() as session:
        ended = session.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
            )
        ).all()
    assert len(ended) == 1
    servers = wakeups.channel(SERVERS)
    assert servers.wait(5)
    wait_for(lambda: wakeups.listening, timeout_s=5, what="listening again")
    servers.wait(1)  # woken for whatever changed meanwhile (it may have been already)
    _project(committing_db)
    with committing_db.transaction() as session:
        session.add(Server(id="s" * 24, project_id=PROJECT, kind=ServerKind.RTMP, name="b",
                           spec={"kind": "rtmp"}))  # fmt: skip
    assert servers.wait(5)


def test_a_loop_without_a_listener_polls() -> None:
    assert not Channel().listening


def test_the_sender_sleeps_until_the_next_delivery_is_due(
    wakeups: Wakeups, committing_db: Database
) -> None:
    sender = WebhookSender(committing_db, allow_private=False, idle_s=30,
                           wakeups=wakeups.channel(WEBHOOKS))  # fmt: skip
    polling = WebhookSender(committing_db, allow_private=False)  # nothing wakes it
    try:
        assert sender.send_due() == Look(0, 30)  # nothing waits: until woken, or 30 s
        assert polling.send_due() == Look(0, 1.0)
        _project(committing_db)
        with committing_db.transaction() as session:
            session.add(Webhook(id="w" * 24, project_id=PROJECT, url="http://h.example/",
                                secret="s" * 20, kinds=[]))  # fmt: skip
            session.flush()
            now = database_now(session)
            session.add(WebhookDelivery(webhook_id="w" * 24, event_id=1, body={},
                                        state=webhooks.PENDING, attempts=1,
                                        next_at=now + timedelta(seconds=10),
                                        give_up_at=now + timedelta(hours=1)))  # fmt: skip
        claimed, sleep_s = sender.send_due()
        assert claimed == 0 and 8 < sleep_s <= 10  # a retry due in 10 s
    finally:
        sender.stop()
        polling.stop()


def test_a_node_running_no_server_reads_when_woken_not_every_second(
    wakeups: Wakeups, committing_db: Database, redis_client: redis.Redis
) -> None:
    def counted(channel: Channel) -> tuple[NodeServers, list[float]]:
        servers = NodeServers(committing_db, redis_client, "quiet", "127.0.0.1", poll_s=0.1,
                              idle_s=30, wakeups=channel)  # fmt: skip
        steps: list[float] = []
        step = servers.step

        def counted_step() -> None:
            steps.append(time.monotonic())
            step()

        servers.step = counted_step  # type: ignore[method-assign]
        servers.start()
        return servers, steps

    woken, woken_steps = counted(wakeups.channel(SERVERS))
    polling, polling_steps = counted(Channel())
    try:
        time.sleep(1.0)
        assert len(woken_steps) == 1  # the first
        assert len(polling_steps) >= 5  # every poll_s
        _project(committing_db)
        with committing_db.transaction() as session:
            session.add(Server(id="s" * 24, project_id=PROJECT, kind=ServerKind.SRT, name="a",
                               spec={"kind": "srt"}))  # fmt: skip
        wait_for(lambda: len(woken_steps) == 2, timeout_s=5, what="a step when woken")
    finally:
        woken.stop()
        polling.stop()


def test_a_listener_that_does_not_hear_itself_does_not_listen(
    engine: Engine, pg_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As behind a pooler in transaction mode: its LISTEN is not where the notifications go
    (here: on another database, to which none of the engine's notifications are sent)."""
    elsewhere = make_url(pg_server_url)

    def connect(self: Wakeups) -> psycopg.Connection[tuple[object, ...]]:
        connection = psycopg.Connection.connect(
            elsewhere.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )
        for name in [*self.channels, self.probe_channel]:
            connection.execute(f'LISTEN "{name}"')
        return connection

    monkeypatch.setattr(Wakeups, "_connect", connect)
    monkeypatch.setattr(wakeups_module, "PROBE_S", 0.5)
    listener = Wakeups(engine)
    listener.start()
    try:
        time.sleep(1.5)  # its probe was sent and not heard
        assert not listener.listening
        assert not listener.channel(SERVERS).listening  # its loop reads every second
    finally:
        listener.stop()


def test_a_listener_never_started_stops(engine: Engine) -> None:
    Wakeups(engine).stop()  # a worker whose start failed early closes it all the same
