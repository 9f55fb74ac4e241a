"""The Celery app for `celery beat` and Flower: the broker and the reconcile schedule only."""

from __future__ import annotations

from common.celery_app import create_celery
from common.config import get_settings

app = create_celery(get_settings())
