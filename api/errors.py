"""Turning exceptions into `StreamfleetError`s, and per-surface routes that render them.

Each surface has its own error envelope. Its routes use `surface_route(render)`, so every
error raised while handling one of them — validation, authentication, a service error, an
unreachable backend — is rendered by that surface's one renderer, and the request's
transaction is rolled back: a refused request writes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import redis
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from api.deps import in_one_trip, request_session
from api.limits import MAX_JSON_DEPTH, json_depth
from common.db import conflict_of
from common.errors import (
    BackendUnavailable,
    FieldProblem,
    InvalidInput,
    NotFound,
    StreamfleetError,
)

log = logging.getLogger(__name__)
FORM = "application/x-www-form-urlencoded"
Renderer = Callable[[StreamfleetError], Response]


class Problem(BaseModel):
    """One refused field of a request, in every surface's error answer that lists them."""

    field: str = Field(description="Where: a dotted path into the request (`outputs.1.id`).")
    message: str


def error_responses(model: type[BaseModel], statuses: Mapping[int, str]) -> dict[int | str, Any]:
    """OpenAPI `responses` of a surface: each error status it answers, in its error shape."""
    return {status: {"model": model, "description": text} for status, text in statuses.items()}


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """("body", "input", "input_type") -> "input.input_type"."""
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def as_streamfleet_error(error: Exception) -> StreamfleetError | None:
    if isinstance(error, StreamfleetError):
        return error
    if isinstance(error, RequestValidationError):
        return invalid_request(error.errors())
    if isinstance(error, PoolTimeout):
        return BackendUnavailable("the database is busy: no connection came free", 1)
    if isinstance(error, OperationalError):
        return BackendUnavailable(_unreachable(error))
    if isinstance(error, redis.RedisError):
        return BackendUnavailable("Redis is unreachable")
    return _refused_by_a_library(error)


def _unreachable(error: OperationalError) -> str:
    """What went wrong with the database, in the operator's words."""
    reason = str(error.orig).splitlines()[0] if error.orig else ""
    if "did not answer" in reason or "statement timeout" in reason:
        return f"the database is unreachable: {reason}"
    return "the database is unreachable"


def _refused_by_a_library(error: Exception) -> StreamfleetError | None:
    """Input that FastAPI (a body it cannot parse) or PostgreSQL (a number out of range)
    turned down."""
    if isinstance(error, HTTPException) and error.status_code in (400, 404):
        detail = str(error.detail)
        return InvalidInput(detail) if error.status_code == 400 else NotFound(detail)
    if isinstance(error, IntegrityError):
        return conflict_of(error)
    if isinstance(error, DataError):
        reason = str(error.orig).splitlines()[0] if error.orig else "invalid value"
        return InvalidInput(f"a value cannot be stored: {reason}")
    return None


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> InvalidInput:
    """Pydantic's errors about the request's fields, as the operator reads them."""
    problems = [FieldProblem(field_path(e.get("loc", ())), _message(e)) for e in errors]
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return InvalidInput(f"invalid request: {summary}", problems)


def _message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid"))
    return message.removeprefix("Value error, ")


def surface_route(render: Renderer) -> type[APIRoute]:
    """An APIRoute class whose errors are rendered by `render`."""

    class SurfaceRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
            super().__init__(path, in_one_trip(endpoint), **options)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
                try:
                    await refuse_unstorable(request)
                    response = await handle(request)
                    session = request_session(request)
                    if session is not None and (session.new or session.dirty or session.deleted):
                        await run_in_threadpool(session.flush)  # fails here, not after
                    return response
                except Exception as error:
                    session = request_session(request)
                    if session is not None:
                        await run_in_threadpool(session.rollback)
                    known = as_streamfleet_error(error)
                    if known is None:
                        log.exception("unexpected error on %s %s", request.method, request.url)
                        known = StreamfleetError("internal error")
                    return render(known)

            return handler

    return SurfaceRoute


async def refuse_unstorable(request: Request) -> None:
    """Refuse text PostgreSQL cannot store or JSON cannot carry — a NUL character or half of
    a UTF-16 surrogate pair — wherever the request holds it, before anything reads it."""
    places: list[tuple[str, str]] = [("path", request.scope.get("path", ""))]
    places += _pairs(request.query_params.multi_items())
    body = await request.body()  # cached: the route reads the same bytes
    if body:
        try:
            text = body.decode()
        except UnicodeDecodeError as error:
            raise InvalidInput(f"the body is not UTF-8: {error}") from error
        if request.headers.get("content-type", "").startswith(FORM):
            pairs = parse_qsl(text, keep_blank_values=True)
            if any(key.count("[") > MAX_JSON_DEPTH for key, _ in pairs):  # `a[b][c]...`
                raise _too_deep()
            places += _pairs(pairs)
        else:
            try:
                document = json.loads(text)
            except RecursionError:
                raise _too_deep() from None
            except ValueError:
                places.append(("body", text))  # not JSON: the route says what it expects
            else:
                if json_depth(document) > MAX_JSON_DEPTH:
                    raise _too_deep()
                places += list(_strings("", document))
    for where, value in places:
        if "\x00" in value or not _encodable(value):
            message = f"{where}: contains a NUL character or an unpaired surrogate"
            raise InvalidInput(message, [FieldProblem(where, "characters that cannot be stored")])


def _too_deep() -> InvalidInput:
    return InvalidInput(f"the body nests deeper than {MAX_JSON_DEPTH} levels")


def _pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Each key and each value of query or form pairs, named by its key."""
    return [(k if _encodable(k) else "?", text) for k, v in pairs for text in (k, v)]


def _strings(where: str, value: Any) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value (keys too), with where it is ("outputs.0.url")."""
    if isinstance(value, str):
        yield where or "body", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield where or "body", str(key)
            inner = f"{where}.{key}" if where else str(key)
            yield from _strings(inner if _encodable(inner) else where, item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(f"{where}.{index}" if where else str(index), item)


def _encodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
