"""Every surface limits each credential's requests a second, counted in Redis: the limit holds
across API replicas (two apps here, one Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from common.accounts.principal import Role
from common.accounts.service import create_api_key, ensure_project
from common.config import Settings
from common.db import Database
from tests.api.conftest import login

RATE = 4
WINDOW_S = 1.0  # the limiter's window (`api.auth.within_rate`)


@pytest.fixture
def replicas(settings: Settings, db: Database) -> Iterator[tuple[TestClient, TestClient]]:
    limited = settings.model_copy(update={"api_requests_per_s": RATE})
    with (
        TestClient(create_app(limited, db=db)) as one,
        TestClient(create_app(limited, db=db)) as two,
    ):
        yield one, two


def test_each_surface_counts_a_credential_across_replicas(
    replicas: tuple[TestClient, TestClient],
    bearer: dict[str, str],
    db: Database,
    redis_client: redis.Redis,
) -> None:
    one, two = replicas
    token = login(one)
    with db.transaction() as session:
        project = ensure_project(session, "acme").id
        _, key = create_api_key(session, "gjirafa", project_id=project, role=Role.OPERATOR)
    # Each credential its own count: the native key's is spent before the others begin.
    surfaces = [
        ("GET", "/v1/restreams", bearer),  # native
        ("POST", "/api/restream/getCount", {"x-access-token": token}),  # Callaba
        ("GET", f"/api/v1/{project}/live-videos", {"Authorization": key}),  # Gjirafa
    ]
    for method, path, headers in surfaces:
        for _ in range(5):
            started = time.monotonic()
            answers = [
                (one if n % 2 else two).request(method, path, headers=headers)
                for n in range(RATE + 2)
            ]
            if time.monotonic() - started < 0.9 * WINDOW_S:
                break
            # Too slow a machine (a busy CI): the first requests' counts expired before the
            # last was sent, and the round tells nothing. Again, from no count.
            for counts in redis_client.scan_iter("ratelimit:api:*"):
                redis_client.delete(counts)
        else:
            pytest.fail(f"{path}: no round of {RATE + 2} requests within {WINDOW_S:g} s")
        codes = [answer.status_code for answer in answers]
        assert codes == [200] * RATE + [429, 429], (path, codes)
        assert answers[-1].headers["Retry-After"] == "1"
