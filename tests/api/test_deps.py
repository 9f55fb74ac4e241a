"""How a request reaches the database: its transaction, and the trips to a worker thread
(`api.deps`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from common.models import Restream
from tests.api.test_native import BODY


@contextmanager
def listening(name: str, listener: Callable[..., None]) -> Iterator[None]:
    """`listener` on every session's `name` event, for the block."""
    event.listen(Session, name, listener)
    try:
        yield
    finally:
        event.remove(Session, name, listener)


def test_a_write_is_one_trip_to_a_thread_after_the_callers_credential(
    client: TestClient, bearer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start: the credential's check, then the route with its commit (and so its control
    message) in the same thread; the answer is checked on the event loop."""
    restream_id = client.post("/v1/restreams", json=BODY, headers=bearer).json()["id"]
    trips: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(work: Callable[..., Any], *args: Any, **options: Any) -> Any:
        trips.append(getattr(work, "__name__", repr(work)))
        return await real(work, *args, **options)

    committed_in: list[int] = []

    def after_commit(_session: Session) -> None:
        committed_in.append(threading.get_ident())

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    with listening("after_commit", after_commit):
        started = client.post(f"/v1/restreams/{restream_id}/start", headers=bearer)
    assert started.status_code == 202, started.text
    assert started.json()["active"] is True
    assert len(trips) == 2, trips
    assert len(committed_in) == 1 and committed_in[0] != threading.get_ident()


def test_a_write_whose_commit_fails_is_refused_in_its_surfaces_shape(
    client: TestClient, bearer: dict[str, str]
) -> None:
    """The commit runs in the route's trip: an error there is the surface's to render, and
    nothing is written."""
    restream_id = client.post("/v1/restreams", json=BODY, headers=bearer).json()["id"]

    def refuse(session: Session, *_: Any) -> None:
        if any(isinstance(o, Restream) and o.active for o in session.dirty):
            raise ValueError("refused at commit")

    with listening("before_flush", refuse):
        answer = client.post(f"/v1/restreams/{restream_id}/start", headers=bearer)
    assert answer.status_code == 500, answer.text
    assert answer.json()["error"]["message"] == "internal error"
    assert client.get(f"/v1/restreams/{restream_id}", headers=bearer).json()["active"] is False
