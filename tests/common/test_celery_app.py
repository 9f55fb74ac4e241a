"""The API's connection to the broker."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from celery.contrib.testing.worker import start_worker

from common.celery_app import (
    TASK_RESTREAM_START,
    celery_sender,
    create_celery,
    node_queue,
    open_broker,
    start_message,
)
from common.config import Settings


def test_an_api_starts_while_the_broker_is_away(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    away = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        open_broker(create_celery(away))  # no exception, no retries
    assert time.monotonic() - started < 2
    assert "the broker cannot be reached yet" in caplog.text


def test_a_real_celery_worker_runs_what_the_sender_sends_and_drops_it_once_expired(
    settings: Settings,
) -> None:
    """The sender writes Celery's messages itself (`celery_sender`): a Celery worker on the
    same Redis consuming the node's queue runs each with its keyword arguments, and refuses
    one whose expiry has passed."""
    app = create_celery(settings)
    ran: list[dict[str, object]] = []
    done = threading.Event()

    @app.task(name=TASK_RESTREAM_START, ignore_result=True)  # type: ignore[untyped-decorator]
    def restream_start(restream_id: str, generation: int) -> None:
        ran.append({"restream_id": restream_id, "generation": generation})
        done.set()

    queue = node_queue("sender-test")
    with start_worker(
        app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=10
    ):
        celery_sender(app, expiry_s=-1)(start_message("sender-test", "stale", 1))
        celery_sender(app, expiry_s=30)(start_message("sender-test", "r1", 7))
        assert done.wait(20), "the worker ran nothing"  # the stale one came first, in order
    assert ran == [{"restream_id": "r1", "generation": 7}]
