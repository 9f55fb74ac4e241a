"""Routes that only read run their statements outside a transaction (`api.deps.reads_only`)."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from common.db import Database
from common.models import Project
from tests.api.test_native import BODY


def test_reads_only_routes_read_outside_a_transaction(
    live: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poll of one restream, a list, its statistics and Callaba's reads take a reading
    session (no BEGIN, no COMMIT); what changes the farm keeps its transaction."""
    readings: list[str] = []
    real = Database.reading

    def counted(self: Database) -> AbstractContextManager[Session]:
        readings.append("reading")
        return real(self)

    monkeypatch.setattr(Database, "reading", counted)
    made = live.post("/v1/restreams", json=BODY, headers=admin)
    assert made.status_code == 201 and readings == []
    restream_id = made.json()["id"]
    one = live.get(f"/v1/restreams/{restream_id}", headers=admin)
    assert one.status_code == 200 and one.json()["name"] == BODY["name"]
    assert one.headers["ETag"] == f'"{made.json()["revision"]}"'
    assert live.get("/v1/restreams", headers=admin).json()["total"] == 1
    assert live.get(f"/v1/restreams/{restream_id}/stats", headers=admin).status_code == 200
    assert live.get("/v1/live", headers=admin).json() == []
    assert len(readings) == 4
    started = live.post(f"/v1/restreams/{restream_id}/start", headers=admin)
    assert started.status_code == 202 and len(readings) == 4  # a change: a transaction
    assert live.get(f"/v1/restreams/{restream_id}", headers=admin).json()["active"] is True
    missing = live.get(f"/v1/restreams/{'f' * 24}", headers=admin)
    assert missing.status_code == 404 and len(readings) == 6


def test_a_reading_session_refuses_to_write_rows(committing_db: Database) -> None:
    with committing_db.reading() as session:
        session.add(Project(id="a" * 24, name="never"))
        with pytest.raises(RuntimeError, match="reads only"):
            session.flush()
    with committing_db.transaction() as session:
        assert session.get(Project, "a" * 24) is None
