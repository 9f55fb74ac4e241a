"""The API's Prometheus metrics."""

from __future__ import annotations

import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from api.app import create_app
from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.config import Settings
from common.db import Database
from tests.support.nodes import simulate_node


def sample(text: str, name: str, /, **labels: str) -> float | None:
    """The value of one sample in the exposition text (parsed by prometheus_client)."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def test_requests_are_counted_by_route_template(client: TestClient, bearer: dict[str, str]) -> None:
    for _ in range(3):
        client.get("/v1/restreams/0123456789abcdef01234567", headers=bearer)
    client.get("/healthz")
    text = client.get("/metrics", headers=bearer).text
    route = "/v1/restreams/{restream_id}"
    assert (
        sample(text, "streamfleet_api_requests_total", method="GET", route=route, status="404") == 3
    )
    assert (
        sample(text, "streamfleet_api_request_duration_seconds_count", method="GET", route=route)
        == 3
    )
    assert (
        sample(text, "streamfleet_api_requests_total", method="GET", route="/healthz", status="200")
        == 1
    )


def test_the_api_exports_its_process_not_the_farm(
    client: TestClient, bearer: dict[str, str], db: Database, redis_client: redis.Redis
) -> None:
    """The farm's figures are the leading reconciler's: every API replica exporting them made
    sum() count each restream once per replica."""
    simulate_node(db, redis_client, "n1")
    text = client.get("/metrics", headers=bearer).text
    assert "streamfleet_restreams" not in text and "streamfleet_nodes" not in text
    assert sample(text, "process_cpu_seconds_total") is not None
    assert sample(text, "python_gc_collections_total", generation="0") is not None


def test_metrics_need_the_metrics_token_or_a_farm_wide_admin_key(
    settings: Settings, db: Database, bearer: dict[str, str], redis_client: redis.Redis
) -> None:
    """They name every restream: not for anyone who can reach the port."""
    with db.transaction() as session:
        project = projects.create(session, Principal("t", Role.ADMIN, None), "p")
        _, project_key = create_api_key(session, "p", project_id=project.id, role=Role.ADMIN)
    with_token = settings.model_copy(update={"metrics_token": SecretStr("scrape-" + "x" * 20)})
    with TestClient(create_app(with_token, db=db)) as client:
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "not_authenticated"
        of_a_project = client.get("/metrics", headers={"Authorization": f"Bearer {project_key}"})
        assert of_a_project.status_code == 403
        token = {"Authorization": "Bearer scrape-" + "x" * 20}
        assert "streamfleet_api_requests_total" in client.get("/metrics", headers=token).text
        assert client.get("/metrics", headers=bearer).status_code == 200
