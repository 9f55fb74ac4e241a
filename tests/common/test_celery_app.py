"""The API's connection to the broker."""

from __future__ import annotations

import logging
import time

import pytest

from common.celery_app import create_celery, open_broker
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
