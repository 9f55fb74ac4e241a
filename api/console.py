"""The operator's console at `/ui`: static files (`api/ui`: one page, its script and style, a
bundled player), served with a content security policy that allows only them, the API, and
the media a preview plays from the nodes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

UI = Path(__file__).parent / "ui"
POLICY = (
    "default-src 'self'; connect-src 'self' http: https:; media-src 'self' blob: http: https:; "
    "img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),  # revalidated: a new version shows at the next load
]


class Console:
    """The static files, each answer with `HEADERS`."""

    def __init__(self) -> None:
        self.files = StaticFiles(directory=UI, html=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.files(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    app.mount("/ui", Console(), name="console")

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/ui/")
