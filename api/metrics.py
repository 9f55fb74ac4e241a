"""Prometheus metrics of the API: requests by route, and the process's own. The farm's figures
(restreams and nodes by state) are the leading reconciler's (`common.reconcile.health`): every
API replica exporting them made `sum()` count each restream once per replica."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import FastAPI, Header, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import require_metrics_reader
from api.deps import ApiState
from api.errors import as_streamfleet_error
from api.surfaces import native
from common.health import process_registry


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
    registry = process_registry()
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
