"""Celery tasks: thin. Parse, call the node runtime, return nothing.

Registered on the worker's app by `worker.app` (`register`), so that neither imports the
other's module at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common.celery_app import (
    TASK_NODE_SYNC,
    TASK_RESTREAM_START,
    TASK_RESTREAM_STOP,
)

if TYPE_CHECKING:
    from worker.runtime import NodeRuntime


def register(app: Any, runtime: Callable[[], NodeRuntime]) -> None:
    """Put the tasks on `app`; each reaches this process's node runtime through `runtime`."""

    @app.task(name=TASK_RESTREAM_START, ignore_result=True)  # type: ignore[untyped-decorator]
    def restream_start(restream_id: str, generation: int) -> None:
        runtime().controls.start(restream_id, int(generation))

    @app.task(name=TASK_RESTREAM_STOP, ignore_result=True)  # type: ignore[untyped-decorator]
    def restream_stop(restream_id: str, generation: int) -> None:
        runtime().controls.stop(restream_id, int(generation))

    @app.task(name=TASK_NODE_SYNC, ignore_result=True)  # type: ignore[untyped-decorator]
    def node_sync(node: str, desired: dict[str, Any]) -> None:
        runtime().controls.sync({rid: int(gen) for rid, gen in desired.items()})
