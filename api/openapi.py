"""The OpenAPI document, for people (`/docs`, `/redoc`, their assets served from the package
`fastapi-offline` ships, so they work without internet) and for client generators: stable
operation ids (`<surface>_<function>`), each surface's security scheme on its operations, and
no error shape but the surface's own (FastAPI's `HTTPValidationError` is never answered: every
surface renders validation errors in its envelope, with the statuses it documents)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs-assets"
# Path prefix → (surface, its security scheme), longest first.
SURFACES = (
    ("/api/auth/login", "callaba", None),
    ("/api/v1/", "gjirafa", "projectKey"),
    ("/api/", "callaba", "accessToken"),
    ("/v2/", "cdn", "cdnKey"),
    ("/v1/", "native", "bearer"),
)
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The native API: an API key (`sf_…`), or a login token from "
        "`POST /api/auth/login`.",
    },
    "accessToken": {
        "type": "apiKey",
        "in": "header",
        "name": "x-access-token",
        "description": "The Callaba surface: a login token (or an API key).",
    },
    "projectKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "The Gjirafa VP surface: a key of the project in the path, as is or "
        "after `Bearer `.",
    },
    "cdnKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The 5centsCDN surface: an API key.",
    },
}


def surface_of(path: str) -> tuple[str, str | None]:
    for prefix, surface, scheme in SURFACES:
        if path.startswith(prefix):
            return surface, scheme
    return "farm", None


def operation_id(route: APIRoute) -> str:
    """`<surface>_<function name>`: stable as long as the function keeps its name."""
    return f"{surface_of(route.path_format)[0]}_{route.name}"


def install(app: FastAPI) -> None:
    """The document as described above, and the pages that show it."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]  # FastAPI's documented way
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} API",
            redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )


def _document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    seen: dict[str, str] = {}
    for path, item in doc["paths"].items():
        _, scheme = surface_of(path)
        for method, operation in item.items():
            where, op_id = f"{method.upper()} {path}", operation["operationId"]
            if op_id in seen:  # a generated client would lose one of them
                raise ValueError(f"operation id {op_id} of both {where} and {seen[op_id]}")
            seen[op_id] = where
            if scheme is not None:
                operation["security"] = [{scheme: []}]
            responses = operation.get("responses", {})
            for status in [s for s, r in responses.items() if "HTTPValidationError" in str(r)]:
                del responses[status]
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    doc.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    return doc
