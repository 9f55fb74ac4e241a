"""Celery tasks: thin. Parse, call the node runtime, return nothing."""

from __future__ import annotations

from typing import Any

from common.celery_app import (
    TASK_FARM_RECONCILE,
    TASK_NODE_SYNC,
    TASK_RESTREAM_START,
    TASK_RESTREAM_STOP,
)
from worker.app import app, runtime


@app.task(name=TASK_RESTREAM_START, ignore_result=True)  # type: ignore[untyped-decorator]
def restream_start(restream_id: str, generation: int) -> None:
    runtime().start_restream(restream_id, int(generation))


@app.task(name=TASK_RESTREAM_STOP, ignore_result=True)  # type: ignore[untyped-decorator]
def restream_stop(restream_id: str, generation: int) -> None:
    runtime().stop_restream(restream_id, int(generation))


@app.task(name=TASK_NODE_SYNC, ignore_result=True)  # type: ignore[untyped-decorator]
def node_sync(node: str, desired: dict[str, Any]) -> None:
    runtime().sync({rid: int(gen) for rid, gen in desired.items()})


@app.task(name=TASK_FARM_RECONCILE, ignore_result=True)  # type: ignore[untyped-decorator]
def farm_reconcile() -> None:
    runtime().reconcile()
