"""Prometheus metrics of the API: requests by route, restreams and nodes by state."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import FastAPI, Header, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import require_metrics_reader
from api.deps import ApiState
from api.errors import as_streamfleet_error
from api.surfaces import native
from common.definitions.states import NodeState, RestreamState
from common.models import Node
from common.restreams import repository


class FarmCollector(Collector):
    """Restreams and nodes by state, counted in PostgreSQL at scrape time."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        restreams = GaugeMetricFamily(
            "streamfleet_restreams", "Restreams by observed state.", labels=["state"]
        )
        nodes = GaugeMetricFamily("streamfleet_nodes", "Worker nodes by state.", labels=["state"])
        with self.state.db.transaction() as session:
            by_state = repository.count_by_state(session)
            by_node_state = dict(
                session.execute(select(Node.state, func.count()).group_by(Node.state)).all()
            )
        for restream_state in RestreamState:
            restreams.add_metric([restream_state.value], by_state.get(restream_state, 0))
        for node_state in NodeState:
            nodes.add_metric([node_state.value], by_node_state.get(node_state, 0))
        yield restreams
        yield nodes


class MeasureRequests:
    """Counts and times each HTTP request by its route template. Plain ASGI: no extra task or
    stream per request, as `@app.middleware("http")` would add."""

    def __init__(self, app: ASGIApp, *, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = route.path if isinstance(route, APIRoute) else "unmatched"
            if template != "/metrics":
                method = scope["method"]
                self.latency.labels(method, template).observe(time.perf_counter() - started)
                self.requests.labels(method, template, str(status)).inc()


def install(app: FastAPI, state: ApiState) -> None:
    """Count and time every request by its route template; serve `/metrics`."""
    registry = CollectorRegistry()
    requests = Counter(
        "streamfleet_api_requests",
        "API requests handled, by method, route and status code.",
        ["method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "streamfleet_api_request_duration_seconds",
        "Time to answer an API request, by method and route.",
        ["method", "route"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    registry.register(FarmCollector(state))

    app.add_middleware(MeasureRequests, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        try:
            require_metrics_reader(state, authorization)
        except Exception as error:
            refused = as_streamfleet_error(error)
            if refused is None:
                raise
            return native.render_error(refused)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
