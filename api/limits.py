"""How big a request may be: its URL, its body, the nesting of its JSON.

Checked before anything reads the request, so that no request can make the API parse or hold
more than a restream definition ever needs: a 20 MB body used to cost 80 MB of memory, a JSON
body nested 1,000 deep crashed the parser with a RecursionError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import StreamfleetError, TooLarge, UriTooLong

MAX_BODY_BYTES = 1024 * 1024  # a definition with 16 outputs is a few kilobytes
MAX_URL_BYTES = 8 * 1024  # the path and the query string
MAX_JSON_DEPTH = 32  # a definition is four levels deep

Render = Callable[[str, StreamfleetError], Response]


class RequestLimits:
    """Refuses a URL longer than `MAX_URL_BYTES` (414) or a body longer than `MAX_BODY_BYTES`
    (413), in the shape of the surface the path belongs to. The body is read here (up to the
    limit) and handed on as it came."""

    def __init__(self, app: ASGIApp, *, render: Render) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        url_bytes = len(scope.get("raw_path") or path.encode()) + len(scope["query_string"])
        if url_bytes > MAX_URL_BYTES:
            error: StreamfleetError = UriTooLong(
                f"the URL is {url_bytes} bytes long; at most {MAX_URL_BYTES} are taken"
            )
            await self.render(path, error)(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > MAX_BODY_BYTES:
            await self.render(path, _body_too_large(declared))(scope, receive, send)
            return
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > MAX_BODY_BYTES:
                await self.render(path, _body_too_large(size))(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _body_too_large(size: int) -> TooLarge:
    return TooLarge(f"the body is {size} bytes or more; at most {MAX_BODY_BYTES} are taken")


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar: 0). Without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest
