"""The alerts and the dashboard the chart ships: parsed with a real PromQL parser
(`promql-parser`, a port of Prometheus' own), and every metric they query checked against what
the API, the reconciler and a worker export here (their real registries, scraped)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import redis
import yaml
from fastapi.testclient import TestClient
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.config import Settings
from common.db import Database
from common.definitions.restream import RestreamDefinition
from common.lifecycle import service
from common.reconcile.health import FarmCollector, RoundLog
from common.reconcile.run import RoundSummary
from tests.support.nodes import simulate_node
from tests.worker.test_http import FakeNode
from worker.http import WorkerHttp

FILES = Path(__file__).parents[2] / "helm" / "streamfleet" / "files"
RULES = yaml.safe_load((FILES / "prometheus-rules.yaml").read_text())
DASHBOARD = json.loads((FILES / "grafana-dashboard.json").read_text())
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "info": ("_info",),
    "summary": ("_count", "_sum", "_created"),
}


def families(text: str) -> dict[str, set[str]]:
    """Sample names a scrape can show -> the label names seen with them."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        names = [family.name + s for s in SAMPLE_SUFFIXES.get(family.type, ("",))]
        for name in names:
            found.setdefault(name, set())
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
    return found


@pytest.fixture
def metrics(db: Database, redis_client: redis.Redis, settings: Settings) -> dict[str, set[str]]:
    """What the three kinds of process export, scraped from their real registries."""
    simulate_node(db, redis_client, "n1")
    definition = RestreamDefinition.model_validate(
        {
            "input": {"input_type": "INPUT_TYPE_GENERATE_TEST_VIDEO"},
            "outputs": [{"output_type": "OUTPUT_TYPE_UDP_URL", "output_stream_url": "udp://h:1"}],
        }
    )
    admin = Principal("test", Role.ADMIN, None)
    with db.transaction() as session:
        service.create(
            session, service.Farm(redis_client, settings), admin, "r", definition, active=True
        )
        _, key = create_api_key(session, "monitoring")
    found: dict[str, set[str]] = {}
    with TestClient(create_app(settings, db=db)) as client:
        client.get("/healthz")
        text = client.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text
    found.update(families(text))
    rounds = RoundLog(interval_s=1.0)
    rounds.record(RoundSummary(ran=True, actions={"MarkNodeOffline": 1}), 0.01)
    rounds.registry.register(FarmCollector(db, rounds))
    found.update(families(rounds.metrics().decode()))
    worker = WorkerHttp(FakeNode(), 0, "127.0.0.1")
    try:
        found.update(families(generate_latest(worker.registry).decode()))
    finally:
        worker.server.server_close()
    return found


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    parsed = promql_parser.parse(expr)  # raises ValueError on a syntax error
    seen: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            seen.append(node)

    promql_parser.walk(parsed, visit)
    return seen


def rules() -> list[dict[str, Any]]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    queries = []
    for panel in DASHBOARD["panels"]:
        for target in panel["targets"]:
            used = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert used <= variables, (panel["title"], used - variables)
            queries.append(re.sub(r"\$\{?(\w+)\}?", "x", target["expr"]))
    return queries


def test_the_alerts_are_the_ones_an_operator_needs() -> None:
    names = {rule["alert"] for rule in rules()}
    assert {
        "StreamfleetNodeLost",
        "StreamfleetRestreamFailed",
        "StreamfleetRetriesClimbing",
        "StreamfleetReconcilerStalled",
        "StreamfleetNoCapacity",
    } <= names
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        if "for" in rule:
            promql_parser.parse_duration(rule["for"])
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]


def test_every_alert_and_panel_queries_metrics_the_farm_exports(
    metrics: dict[str, set[str]],
) -> None:
    queries = [(rule["alert"], rule["expr"]) for rule in rules()]
    queries += [("dashboard", expr) for expr in dashboard_queries()]
    for where, expr in queries:
        for selector in selectors(expr):
            assert selector.name in metrics, f"{where}: {selector.name} is not exported"
            for matcher in selector.matchers.matchers:
                if matcher.name not in {"job", "instance"}:  # Prometheus' own
                    assert matcher.name in metrics[selector.name], (where, matcher.name)


def test_alert_annotations_name_labels_their_series_have(metrics: dict[str, set[str]]) -> None:
    for rule in rules():
        labels = set().union(*(metrics[s.name or ""] for s in selectors(rule["expr"])))
        for text in rule["annotations"].values():
            for label in re.findall(r"\$labels\.(\w+)", text):
                assert label in labels, f"{rule['alert']}: no label {label} in its series"


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    assert DASHBOARD["uid"] == "streamfleet" and DASHBOARD["schemaVersion"] >= 36
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        assert panel["datasource"]["uid"] == "${datasource}"
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
