"""The worker's Celery app: `celery -A worker.app worker --pool threads -Q node.<name>,control`.

A worker bootstep (not a consumer bootstep: it must outlive broker reconnections) owns the
node runtime: supervisor, lease and reporter. Tasks are thin and reach it via `runtime()`.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from celery import bootsteps
from celery.signals import setup_logging

from common.celery_app import celery_sender, create_celery
from common.config import get_settings
from common.logs import configure_logging
from worker import tasks
from worker.runtime import NodeRuntime

log = logging.getLogger(__name__)

settings = get_settings()
configure_logging(settings.log_level, settings.log_format)
app = create_celery(settings)


@setup_logging.connect  # type: ignore[untyped-decorator]
def _logging(**_kwargs: Any) -> None:
    """Celery leaves logging to us (one format for every process)."""
    configure_logging(settings.log_level, settings.log_format)


class _Holder:
    """The node runtime of this worker process, set by `NodeStep`."""

    runtime: NodeRuntime | None = None


def runtime() -> NodeRuntime:
    if _Holder.runtime is None:
        raise RuntimeError("the node runtime is not started (is this a worker process?)")
    return _Holder.runtime


class NodeStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """Starts the node runtime with the worker and stops it (all FFmpeg) on shutdown."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)

    def start(self, parent: Any) -> None:
        node = NodeRuntime(
            settings,
            celery_sender(app, settings.control_message_expiry_s),
            on_lost=_leave,
        )
        node.start()
        _Holder.runtime = node

    def stop(self, parent: Any) -> None:
        node, _Holder.runtime = _Holder.runtime, None
        if node is not None:
            log.info("stopping node %s", node.node)
            node.shutdown()

    def info(self, parent: Any) -> dict[str, Any]:
        return _Holder.runtime.info() if _Holder.runtime is not None else {}


def _leave() -> None:
    """Another worker of this node's name took the lease: warm shutdown, as on SIGTERM (the
    queue is left to that worker; see NodeRuntime.shutdown)."""
    os.kill(os.getpid(), signal.SIGTERM)


app.steps["worker"].add(NodeStep)
tasks.register(app, runtime)
