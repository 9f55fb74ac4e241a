"""The FastAPI application: `uvicorn --factory api.app:create_app` (`streamfleet api` runs it
with `api.serve`)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import console, metrics, openapi
from api.deps import ApiState, DatabaseGate
from api.limits import RequestLimits
from api.surfaces import (
    callaba,
    fivecents,
    gjirafa,
    native,
    native_events,
    native_nodes,
    native_projects,
    servers,
)
from common import live
from common.accounts import service as accounts
from common.accounts.throttle import LoginThrottle
from common.celery_app import celery_sender, create_celery, open_broker
from common.config import Settings, get_settings
from common.db import Database, make_engine
from common.errors import InvalidInput, MethodNotAllowed, NotFound, StreamfleetError
from common.logs import configure_logging

log = logging.getLogger(__name__)
SPARE_CONNECTIONS = 2


def create_app(settings: Settings | None = None, *, db: Database | None = None) -> FastAPI:
    """The API. `db` may be given (tests bind it to a rolled-back transaction)."""
    settings = settings or get_settings()
    settings.require_secrets()
    configure_logging(settings.log_level, settings.log_format)
    celery = create_celery(settings)
    if db is None:
        db = Database(
            make_engine(
                settings.database_url,
                # Two beyond the requests' share: probes and scrapes never wait behind them.
                connections=settings.api_db_connections + SPARE_CONNECTIONS,
                statement_timeout_s=settings.db_statement_timeout_s,
                pool_timeout_s=settings.api_db_wait_s,
            ),
            celery_sender(celery, settings.control_message_expiry_s),
        )
    client = live.connect(settings.redis_url)
    state = ApiState(
        settings=settings,
        db=db,
        redis=client,
        celery=celery,
        gate=DatabaseGate(settings.api_db_connections, settings.api_db_wait_s),
        throttle=LoginThrottle(
            client,
            per_account=settings.login_failures_per_account,
            per_address=settings.login_failures_per_address,
            window_s=settings.login_failure_window_s,
        ),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        bootstrap(state)
        open_broker(celery)
        yield
        state.db.dispose()

    app = FastAPI(
        title="streamfleet",
        version="0.1.0",
        description="Distributed live restreaming and transcoding farm.",
        lifespan=lifespan,
        docs_url=None,  # served by `api.openapi`, with bundled assets
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    console.install(app)
    app.state.streamfleet = state
    app.add_middleware(RequestLimits, render=render_for)  # before anything reads the request
    metrics.install(app, state)  # its middleware outside: refused requests are counted too
    app.include_router(native.router)
    app.include_router(native_nodes.router)
    app.include_router(native_projects.router)
    app.include_router(native_events.router)
    app.include_router(callaba.router)
    app.include_router(servers.callaba_srt)
    app.include_router(servers.callaba_rtmp)
    app.include_router(servers.router)
    app.include_router(gjirafa.router)
    app.include_router(fivecents.router)
    _unrouted(app)
    _health(app, state)
    return app


# Which surface a path belongs to, longest prefix first: its renderer answers for it even when
# no route matches (an unknown path, a method the route does not take).
SURFACE_RENDERERS = (
    ("/api/v1/", gjirafa.render_error),
    ("/api/", callaba.render_error),
    ("/v2/", fivecents.render_error),
    ("/v1/", native.render_error),
)


def render_for(path: str, error: StreamfleetError) -> Response:
    """`error` in the shape of the surface `path` belongs to (the native one elsewhere)."""
    render = next((r for prefix, r in SURFACE_RENDERERS if path.startswith(prefix)), None)
    return (render or native.render_error)(error)


def _unrouted(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def in_the_surfaces_shape(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if any(request.url.path.startswith(prefix) for prefix, _ in SURFACE_RENDERERS):
            return render_for(request.url.path, _unrouted_error(error))
        return await http_exception_handler(request, error)


def _unrouted_error(error: StarletteHTTPException) -> StreamfleetError:
    message = str(error.detail)
    if error.status_code == 404:
        return NotFound(f"{message}: no such path")
    if error.status_code == 405:
        return MethodNotAllowed(message)
    return InvalidInput(message)


def bootstrap(state: ApiState) -> None:
    """The default project and the farm administrator from settings exist."""
    password = state.settings.admin_password
    assert password is not None  # require_secrets() ran
    with state.db.transaction() as session:
        accounts.ensure_project(session, state.settings.default_project_name)
        accounts.ensure_admin(session, state.settings.admin_email, password.get_secret_value())


def _health(app: FastAPI, state: ApiState) -> None:
    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> Any:
        """Ready: PostgreSQL and Redis are reachable."""
        checks: dict[str, str] = {}
        try:
            with state.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:
            checks["database"] = f"unreachable: {type(error).__name__}"
        try:
            state.redis.ping()
            checks["redis"] = "ok"
        except redis.RedisError as error:
            checks["redis"] = f"unreachable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", **checks},
            status_code=200 if ready else 503,
        )
