"""Every surface limits each credential's requests a second, counted in Redis: the limit holds
across API replicas (two apps here, one Redis)."""

from __future__ import annotations

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
from tests.support.ratelimits import within_one_window

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
        answers = within_one_window(
            lambda n: (one if n % 2 else two).request(method, path, headers=headers),  # noqa: B023
            RATE + 2,
            window_s=WINDOW_S,
            client=redis_client,
            prefix="ratelimit:api",
            what=path,
        )
        codes = [answer.status_code for answer in answers]
        assert codes == [200] * RATE + [429, 429], (path, codes)
        assert answers[-1].headers["Retry-After"] == "1"
