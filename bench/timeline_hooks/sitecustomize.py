"""Timestamps for `bench/timeline.py`, written by the farm's own processes.

`bench/timeline.py` puts this directory on the PYTHONPATH of the farm it starts, with
STREAMFLEET_TIMELINE naming a file: Python imports this module at start-up, and it wraps a few
functions of the API and the worker as their modules are imported, each wrapper appending
`<time> <step>` to that file. What the wrapped functions do and return is unchanged: a mark
that cannot be written is left out. Without the variable nothing is wrapped. (It takes the
place of any other `sitecustomize` of the farm's Python while the benchmark runs.)
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec, PathFinder
from types import ModuleType
from typing import Any

TRACE_FILE = os.environ.get("STREAMFLEET_TIMELINE")
_SESSION_KEY = "timeline.step"  # what a session's commit completes (in its `info`)


def _command_line() -> str:
    """This process's command line as started (sys.argv is not yet set for `-m` here)."""
    try:
        with open("/proc/self/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


IN_API = "-m api.serve" in _command_line()  # the API's process (`python -m api.serve`)


def mark(step: str) -> None:
    """Append `step` with the time now; never fails the farm's own work."""
    with contextlib.suppress(Exception), open(str(TRACE_FILE), "a") as log:
        log.write(f"{time.time():.6f} {step}\n")


def failed(what: str) -> None:
    with contextlib.suppress(Exception), open(f"{TRACE_FILE}.errors", "a") as errors:
        errors.write(f"{what}\n")


def around(owner: Any, name: str, before: str | None, after: str | None = None) -> None:
    """Mark `before` when `owner.name` is called and `after` when it returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before:
            mark(before)
        result = original(*args, **kwargs)
        if after:
            mark(after)
        return result

    setattr(owner, name, wrapper)


def around_async(owner: Any, name: str, before: str, after: str | None = None) -> None:
    """`around` for a coroutine function: the marks as it starts and as it returns."""
    original = getattr(owner, name)

    @functools.wraps(original)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(before)
        result = await original(*args, **kwargs)
        if after:
            mark(after)
        return result

    setattr(owner, name, wrapper)


def committing(owner: Any, name: str, step: Callable[..., str]) -> None:
    """Mark `step(*args)` when the transaction that `owner.name` ran in (its first argument,
    a session) commits."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(session: Any, *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(Exception):
            session.info[_SESSION_KEY] = step(*args)
        return original(session, *args, **kwargs)

    setattr(owner, name, wrapper)


def _api(service: ModuleType) -> None:
    around(service, "start", "API: service.start called", "API: service.start returned")
    around(service, "stop", "API: service.stop called", "API: service.stop returned")
    committing(service, "start", lambda *_: "API: committed")
    committing(service, "stop", lambda *_: "API: committed")


def _credentials(auth: ModuleType) -> None:
    around(auth, "login_claims", "API: checking its login token", "API: its login token checked")
    around(auth.accounts, "user_principal", None, "API: its user read")


def _requests(applications: ModuleType) -> None:
    around_async(applications.FastAPI, "__call__", "API: a request comes in")


def _sender(celery_app: ModuleType) -> None:
    make = celery_app.celery_sender

    @functools.wraps(make)
    def celery_sender(*args: Any, **kwargs: Any) -> Callable[[Any], None]:
        send = make(*args, **kwargs)

        def traced(message: Any) -> None:
            send(message)
            if IN_API and message.task.startswith("restream."):
                mark("API: its message sent (LPUSH)")

        return traced

    celery_app.celery_sender = celery_sender


def _worker(controls: ModuleType) -> None:
    around(controls.Controls, "start", "worker: the task runs")
    around(controls.Controls, "stop", "worker: the task runs")
    around(controls.reports, "should_run", None, "worker: checked in PostgreSQL")


def _spawn(spawn: ModuleType) -> None:
    around_async(spawn.Spawner, "spawn", "worker: spawning FFmpeg", "worker: FFmpeg spawned")


def _jobrun(jobrun: ModuleType) -> None:
    around_async(jobrun.JobRun, "_terminate", "worker: stopping FFmpeg")


def _reporter(reporter: ModuleType) -> None:
    seen = {"Running": "worker: media flows", "Ended": "worker: FFmpeg gone"}
    original = reporter.Reporter.report

    @functools.wraps(original)
    def report(self: Any, job: Any, observed: Any) -> None:
        step = seen.get(type(observed).__name__)
        if step:
            mark(step)
        original(self, job, observed)

    reporter.Reporter.report = report
    committing(reporter.reports, "apply", lambda _, r: f"worker: {type(r).__name__} committed")


def _sessions(orm: ModuleType) -> None:
    from sqlalchemy import event

    def after_commit(session: Any) -> None:
        if session.in_nested_transaction():  # a savepoint released: not the commit
            return
        step = session.info.pop(_SESSION_KEY, None)
        if step:
            mark(step)

    def after_rollback(session: Any, transaction: Any) -> None:
        if transaction.parent is None:  # the label went with its transaction
            session.info.pop(_SESSION_KEY, None)

    event.listen(orm.Session, "after_commit", after_commit)
    event.listen(orm.Session, "after_soft_rollback", after_rollback)


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "common.lifecycle.service": _api,
    "common.celery_app": _sender,
    "api.auth": _credentials,
    "fastapi.applications": _requests,
    "worker.controls": _worker,
    "worker.spawn": _spawn,
    "worker.jobrun": _jobrun,
    "worker.reporter": _reporter,
    "sqlalchemy.orm": _sessions,
}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds each module of PATCHES as the path finder would, and patches it once run."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        patch = PATCHES.get(name)
        if patch is None:
            return None
        spec = PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            try:
                patch(module)
            except Exception as error:  # renamed since, say: those steps go untraced
                failed(f"{name}: {error!r}")

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if TRACE_FILE:
    sys.meta_path.insert(0, _PatchOnImport())
