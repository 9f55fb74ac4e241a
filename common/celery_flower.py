"""The Celery app for Flower: the broker only."""

from __future__ import annotations

from typing import Any

from celery.signals import setup_logging

from common.celery_app import create_celery
from common.config import get_settings
from common.logs import configure_logging

settings = get_settings()
app = create_celery(settings)


@setup_logging.connect  # type: ignore[untyped-decorator]
def _logging(**_kwargs: Any) -> None:
    """Celery leaves logging to us (one format for every process)."""
    configure_logging(settings.log_level, settings.log_format)
