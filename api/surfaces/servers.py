"""Media server modules on two surfaces: Callaba's `/api/srt-servers/*` and `/api/rtmp-servers/*`
(its module verbs, field names and answers) and the native `/v1/servers`. Adapters only: every
rule lives in `common.lifecycle.servers`.

A server's address is its node's: when its node is lost it moves to another node, and its
ingest and play URLs change with it (its port and stream ids do not).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from api.auth import BearerPrincipal, TokenPrincipal
from api.deps import FarmDep, SessionDep
from api.errors import surface_route
from api.surfaces import callaba, native
from common.definitions.checks import build
from common.definitions.server import ServerKind, ServerSpec, ServerState
from common.errors import FieldProblem, InvalidInput, NotSupportedYet
from common.lifecycle import servers
from common.lifecycle.servers import ServerView
from common.live import StreamStats
from common.models import Server
from common.restreams.repository import iso_ms

MOVES = (
    "A server runs on one node at a time; if that node is lost it moves to another and its "
    "address (ingest_url, play_url) changes with it."
)

# -- Callaba ---------------------------------------------------------------------------------

# Callaba's names of the settings, and ours.
CALLABA_FIELDS = {
    "server_name": "name",
    "server_port": "port",
    "server_latency": "latency_ms",
    "server_maxbw": "maxbw",
    "server_timeout": "timeout_s",
    "server_rcvbuf": "rcvbuf",
    "server_passphrase": "passphrase",
}
OURS = {ours: theirs for theirs, ours in CALLABA_FIELDS.items()}
SERVER_TYPES = {ServerKind.SRT: "SERVER_TYPE_SRT", ServerKind.RTMP: "SERVER_TYPE_RTMP"}


class CallabaServerBody(BaseModel):
    """create/update body of an SRT or RTMP server module (`id` on update)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    id: str | None = None
    server_name: str | None = None
    server_type: str | None = None
    server_port: int | None = None
    server_latency: int | None = None
    server_maxbw: int | None = None
    server_timeout: int | None = None
    server_rcvbuf: int | None = None
    server_passphrase: str | None = Field(None, alias="passphrase")
    server_active: bool | None = None
    server_receiver_port: int | None = None
    server_publish_key: str | None = Field(None, alias="publish_key")


def _callaba_spec(kind: ServerKind, body: CallabaServerBody, old: ServerSpec | None) -> ServerSpec:
    """Its settings, each refusal naming Callaba's field."""
    if body.server_type is not None and body.server_type.upper() != SERVER_TYPES[kind]:
        message = f"must be {SERVER_TYPES[kind]} here"
        raise InvalidInput(f"server_type: {message}", [FieldProblem("server_type", message)])
    if body.server_receiver_port not in (None, body.server_port):
        raise NotSupportedYet(
            "server_receiver_port: players use the server's own port (server_port) here"
        )
    if body.server_publish_key:
        raise NotSupportedYet("server_publish_key: RTMP servers here take any stream key")
    given = {
        ours: getattr(body, theirs)
        for theirs, ours in CALLABA_FIELDS.items()
        if getattr(body, theirs) is not None
    }
    fields = {**(old.model_dump() if old else {}), **given, "kind": kind}
    missing = [f for f in ("name", "port") if f not in fields]
    if missing:
        problems = [FieldProblem(OURS[f], "required") for f in missing]
        raise InvalidInput(f"missing {', '.join(p.field for p in problems)}", problems)
    try:
        return build(ServerSpec, **fields)
    except InvalidInput as error:
        problems = [FieldProblem(OURS.get(p.field, p.field), p.message) for p in error.problems]
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        raise InvalidInput(f"invalid request: {summary}", problems) from error


def _callaba_doc(view: ServerView) -> dict[str, Any]:
    server = view.server
    spec = server.settings
    return {
        "_id": server.id,
        "id": server.id,
        "server_name": spec.name,
        "server_type": SERVER_TYPES[spec.kind],
        "server_port": spec.port,
        "server_latency": spec.latency_ms,
        "server_maxbw": spec.maxbw,
        "server_timeout": spec.timeout_s,
        "server_rcvbuf": spec.rcvbuf,
        "server_active": server.active,
        "state": view.state.value,
        "state_reason": view.reason,
        "node": server.node_name,
        "address": view.address,
        "ingest_url": view.ingest_url,
        "play_url": view.play_url,
        "active_streams": [s.model_dump(mode="json") for s in view.stats.streams]
        if view.stats
        else [],
        "note": MOVES,
        "created": iso_ms(server.created_at),
        "modified": iso_ms(server.modified_at),
    }


def _one(farm: FarmDep, server: Server) -> dict[str, Any]:
    return _callaba_doc(servers.views(farm, [server])[0])


def callaba_router(kind: ServerKind) -> APIRouter:
    """The module verbs of one kind of Callaba server."""
    router = APIRouter(
        prefix=f"/api/{kind.value}-servers",
        tags=["Callaba Engine compatible"],
        responses=callaba.router.responses,
    )
    router.route_class = surface_route(callaba.render_error)

    @router.post("/create", name=f"create_{kind.value}_server")
    def create(
        body: CallabaServerBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
    ) -> dict[str, Any]:
        spec = _callaba_spec(kind, body, None)
        active = True if body.server_active is None else body.server_active
        server = servers.create(session, farm, principal, spec, active=active)
        return {**_one(farm, server), "success": True, "ok": True}

    @router.post("/update", name=f"update_{kind.value}_server")
    def update(
        body: CallabaServerBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
    ) -> dict[str, Any]:
        server_id = build(callaba.IdBody, id=body.id).id
        current = servers.get(session, principal, server_id, kind)
        spec = _callaba_spec(kind, body, current.settings)
        server = servers.update(
            session, farm, principal, server_id, spec, active=body.server_active
        )
        return {**_one(farm, server), "success": True, "ok": True}

    @router.post("/start", name=f"start_{kind.value}_server")
    def start(
        body: callaba.IdBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
    ) -> dict[str, Any]:
        server = servers.start(session, farm, principal, body.id, kind)
        return {**_one(farm, server), "success": True, "ok": True}

    @router.post("/stop", name=f"stop_{kind.value}_server")
    def stop(
        body: callaba.IdBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
    ) -> dict[str, Any]:
        server = servers.stop(session, principal, body.id, kind)
        return {**_one(farm, server), "success": True, "ok": True}

    @router.delete("/remove", name=f"remove_{kind.value}_server")
    def remove(
        body: Annotated[callaba.IdBody, Body()], session: SessionDep, principal: TokenPrincipal
    ) -> dict[str, Any]:
        servers.remove(session, principal, body.id, kind)
        return {"success": True, "ok": True}

    @router.post("/getAll", name=f"get_all_{kind.value}_servers")
    def get_all(session: SessionDep, farm: FarmDep, principal: TokenPrincipal) -> list[Any]:
        return [
            _callaba_doc(v) for v in servers.views(farm, servers.list_all(session, principal, kind))
        ]

    @router.post("/getCount", name=f"count_{kind.value}_servers")
    def get_count(session: SessionDep, principal: TokenPrincipal) -> dict[str, int]:
        return {"count": len(servers.list_all(session, principal, kind))}

    @router.post("/getById", name=f"get_{kind.value}_server")
    def get_by_id(
        body: callaba.IdBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
    ) -> dict[str, Any]:
        return _one(farm, servers.get(session, principal, body.id, kind))

    return router


callaba_srt = callaba_router(ServerKind.SRT)
callaba_rtmp = callaba_router(ServerKind.RTMP)

# -- native ----------------------------------------------------------------------------------

router = APIRouter(prefix="/v1", tags=["native: servers"], responses=native.ERRORS)
router.route_class = surface_route(native.render_error)


class ServerIn(ServerSpec):
    """A server's settings, and whether it should run."""

    active: bool = True


class ServerOut(BaseModel):
    id: str
    kind: ServerKind
    name: str
    settings: ServerSpec
    active: bool
    state: ServerState = Field(description="stopped, pending, starting, running or failed.")
    state_reason: str | None
    node: str | None
    address: str | None = Field(description=f"Its node's address. {MOVES}")
    ingest_url: str | None
    play_url: str | None
    streams: list[StreamStats] = Field(description="Its streams now, with their peers.")
    created_at: datetime
    modified_at: datetime


def _out(view: ServerView) -> ServerOut:
    server = view.server
    settings = server.settings
    return ServerOut(
        id=server.id,
        kind=settings.kind,
        name=settings.name,
        settings=settings.model_copy(update={"passphrase": "***" if settings.passphrase else None}),
        active=server.active,
        state=view.state,
        state_reason=view.reason,
        node=server.node_name,
        address=view.address,
        ingest_url=view.ingest_url,
        play_url=view.play_url,
        streams=view.stats.streams if view.stats else [],
        created_at=server.created_at,
        modified_at=server.modified_at,
    )


def _shown(farm: FarmDep, server: Server) -> ServerOut:
    return _out(servers.views(farm, [server])[0])


def _spec(body: ServerIn) -> ServerSpec:
    return ServerSpec.model_validate(body.model_dump(exclude={"active"}))


@router.post("/servers", status_code=201)
def create_server(
    body: ServerIn, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> ServerOut:
    return _shown(farm, servers.create(session, farm, principal, _spec(body), active=body.active))


@router.get("/servers")
def list_servers(
    session: SessionDep,
    farm: FarmDep,
    principal: BearerPrincipal,
    kind: Annotated[ServerKind | None, Query(description="Only servers of this kind.")] = None,
) -> list[ServerOut]:
    return [_out(v) for v in servers.views(farm, servers.list_all(session, principal, kind))]


@router.get("/servers/{server_id}")
def get_server(
    server_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> ServerOut:
    return _shown(farm, servers.get(session, principal, server_id, None))


@router.put("/servers/{server_id}")
def replace_server(
    server_id: str, body: ServerIn, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> ServerOut:
    if servers.get(session, principal, server_id, None).kind is not body.kind:
        message = "a server's kind cannot change: remove it and create another"
        raise InvalidInput(f"kind: {message}", [FieldProblem("kind", message)])
    server = servers.update(session, farm, principal, server_id, _spec(body), active=body.active)
    return _shown(farm, server)


@router.post("/servers/{server_id}/start")
def start_server(
    server_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> ServerOut:
    kind = servers.get(session, principal, server_id, None).kind
    return _shown(farm, servers.start(session, farm, principal, server_id, kind))


@router.post("/servers/{server_id}/stop")
def stop_server(
    server_id: str, session: SessionDep, farm: FarmDep, principal: BearerPrincipal
) -> ServerOut:
    kind = servers.get(session, principal, server_id, None).kind
    return _shown(farm, servers.stop(session, principal, server_id, kind))


@router.delete("/servers/{server_id}", status_code=204)
def remove_server(server_id: str, session: SessionDep, principal: BearerPrincipal) -> Response:
    kind = servers.get(session, principal, server_id, None).kind
    servers.remove(session, principal, server_id, kind)
    return Response(status_code=204)
