"""Turning exceptions into `StreamfleetError`s, and per-surface routes that render them.

Each surface has its own error envelope. Its routes use `surface_route(render)`, so every
error raised while handling one of them — validation, authentication, a service error, an
unreachable backend — is rendered by that surface's one renderer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import redis
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from common.errors import BackendUnavailable, FieldProblem, InvalidInput, StreamfleetError

log = logging.getLogger(__name__)
Renderer = Callable[[StreamfleetError], Response]


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """("body", "input", "input_type") -> "input.input_type"."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def as_streamfleet_error(error: Exception) -> StreamfleetError | None:
    if isinstance(error, StreamfleetError):
        return error
    if isinstance(error, RequestValidationError):
        problems = [FieldProblem(field_path(e.get("loc", ())), _message(e)) for e in error.errors()]
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return InvalidInput(f"invalid request: {summary}", problems)
    if isinstance(error, OperationalError | PoolTimeout):
        return BackendUnavailable("the database is unreachable")
    if isinstance(error, redis.RedisError):
        return BackendUnavailable("Redis is unreachable")
    return None


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def surface_route(render: Renderer) -> type[APIRoute]:
    """An APIRoute class whose errors are rendered by `render`."""

    class SurfaceRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    return await handle(request)
                except Exception as error:
                    known = as_streamfleet_error(error)
                    if known is None:
                        log.exception("unexpected error on %s %s", request.method, request.url)
                        known = StreamfleetError("internal error")
                    return render(known)

            return handler

    return SurfaceRoute
