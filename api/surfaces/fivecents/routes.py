"""The 5centsCDN routes: parse (`requests`), one call to the vendor's rules, render
(`render`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import FarmDep, SessionDep
from api.errors import error_responses, surface_route
from api.surfaces.fivecents.render import (
    CdnError,
    answer,
    kbps,
    known_about,
    render_error,
    render_stream,
)
from api.surfaces.fivecents.requests import (
    Body,
    KeyPrincipal,
    PlatformBody,
    StreamBody,
    disabled_flag,
    integer_id,
    parse,
    refuse_cdn_features,
)
from common.definitions.states import RestreamState
from common.errors import (
    FieldProblem,
    InvalidInput,
)
from common.lifecycle import views
from common.vendors import fivecents as pullstreams
from common.vendors.fivecents import PlatformFields

PER_PAGE = 50


router = APIRouter(
    prefix="/v2/streams/restream",
    tags=["5centsCDN compatible"],
    responses=error_responses(
        CdnError,
        {
            400: "Invalid input: `errors` names each field.",
            401: "No X-API-Key, or an unknown or revoked one.",
            403: "The key may not do this.",
            404: "No such stream or platform.",
            409: "A conflict with the farm's state.",
            413: "The body or the URL is too large.",
            422: "Not supported by this farm.",
            429: "More than the allowed requests a second: wait Retry-After seconds.",
            503: "PostgreSQL or Redis unreachable, or busy (then with Retry-After).",
        },
    ),
)
router.route_class = surface_route(render_error)


# -- streams -------------------------------------------------------------------------------------


@router.get("")
def list_streams(
    session: SessionDep,
    farm: FarmDep,
    principal: KeyPrincipal,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> dict[str, Any]:
    rows, total = pullstreams.streams_page(session, principal, page=page, per_page=PER_PAGE)
    known = known_about(session, farm, rows)
    return {
        "result": "success",
        "streams": [render_stream(session, farm, r, known) for r in rows],
        "page": page,
        "perPage": PER_PAGE,
        "total": total,
    }


@router.get("/servers")
def list_servers(session: SessionDep, principal: KeyPrincipal) -> dict[str, Any]:
    return {
        "result": "success",
        "servers": [
            {"id": s.id, "label": s.label, "country": s.region or s.id, "nodes": s.nodes}
            for s in pullstreams.servers(session)
        ],
    }


@router.post("/new")
def create_stream(
    body: Body, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    if str(body.get("_METHOD", "PUT")).upper() != "PUT":
        message = f"_METHOD {body['_METHOD']} does not create: send PUT or leave it out"
        raise InvalidInput(message, [FieldProblem("_METHOD", "must be PUT here")])
    refuse_cdn_features(body)
    fields = parse(StreamBody, body).fields()
    restream = pullstreams.create_stream(session, farm, principal, fields)
    return answer("Stream Created", render_stream(session, farm, restream))


@router.get("/{stream_id}")
def get_stream(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.stream(session, principal, integer_id(stream_id, "stream"))
    return answer("Stream Found", render_stream(session, farm, restream))


@router.post("/{stream_id}")
def update_stream(
    stream_id: str, body: Body, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    number = integer_id(stream_id, "stream")
    if str(body.get("_METHOD", "")).upper() == "DELETE":
        restream = pullstreams.soft_delete(session, farm, principal, number)
        return answer("Stream Deleted", render_stream(session, farm, restream))
    refuse_cdn_features(body)
    fields = parse(StreamBody, body).fields()
    restream = pullstreams.update_stream(session, farm, principal, number, fields)
    return answer("Stream Updated", render_stream(session, farm, restream))


@router.delete("/{stream_id}")
def delete_stream(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.soft_delete(session, farm, principal, integer_id(stream_id, "stream"))
    return answer("Stream Deleted", render_stream(session, farm, restream))


@router.get("/{stream_id}/restore")
def restore_stream(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.restore(session, farm, principal, integer_id(stream_id, "stream"))
    return answer("Stream Restored", render_stream(session, farm, restream))


@router.get("/{stream_id}/restart")
def restart_stream(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.restart_stream(session, farm, principal, integer_id(stream_id, "stream"))
    return answer("Stream Restarted", render_stream(session, farm, restream))


@router.post("/{stream_id}/status")
def stream_status(
    stream_id: str, body: Body, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    disabled = disabled_flag(body)
    restream = pullstreams.set_disabled(
        session, farm, principal, integer_id(stream_id, "stream"), disabled=disabled
    )
    return answer(
        "Stream Disabled" if disabled else "Stream Enabled", render_stream(session, farm, restream)
    )


@router.get("/{stream_id}/statistics")
def stream_statistics(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.stream(session, principal, integer_id(stream_id, "stream"))
    followers = pullstreams.platforms(session, restream)
    now = views.read(farm.redis, [restream, *followers])
    own = now.of(restream)
    alive = restream.state is RestreamState.RUNNING and own is not None
    return {
        "result": "success",
        "statistics": {
            "fs": {
                "status": "Alive" if alive else "Dead",
                "bitrate": kbps(own),
                "fps": own.fps if own else None,
                "speed": own.speed if own else None,
                "uptime": round(own.uptime_s) if own else 0,
                "restarts": own.restarts if own else 0,
            },
            "platforms": [
                {
                    "id": p.number,
                    "status": "Alive"
                    if p.state is RestreamState.RUNNING and now.of(p) is not None
                    else "Dead",
                    "bitrate": kbps(now.of(p)),
                }
                for p in followers
            ],
        },
    }


# -- platforms -----------------------------------------------------------------------------------


@router.post("/{stream_id}/platforms")
def add_platform(
    stream_id: str, body: Body, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    number = integer_id(stream_id, "stream")
    fields = parse(PlatformBody, body).fields()
    pullstreams.add_platform(session, farm, principal, number, fields)
    restream = pullstreams.stream(session, principal, number)
    return answer("Platform Created", render_stream(session, farm, restream))


@router.post("/{stream_id}/platform/{platform_id}")
def update_platform(
    *,
    stream_id: str,
    platform_id: str,
    body: Body,
    session: SessionDep,
    farm: FarmDep,
    principal: KeyPrincipal,
) -> dict[str, Any]:
    number, platform = integer_id(stream_id, "stream"), integer_id(platform_id, "platform")
    fields = parse(PlatformBody, body).fields()
    pullstreams.update_platform(session, farm, principal, number, platform, fields=fields)
    restream = pullstreams.stream(session, principal, number)
    return answer("Platform Updated", render_stream(session, farm, restream))


@router.post("/{stream_id}/platform/{platform_id}/status")
def platform_status(
    *,
    stream_id: str,
    platform_id: str,
    body: Body,
    session: SessionDep,
    farm: FarmDep,
    principal: KeyPrincipal,
) -> dict[str, Any]:
    number, platform = integer_id(stream_id, "stream"), integer_id(platform_id, "platform")
    disabled = disabled_flag(body)
    fields = PlatformFields(disabled=disabled)
    pullstreams.update_platform(session, farm, principal, number, platform, fields=fields)
    restream = pullstreams.stream(session, principal, number)
    message = "Platform Disabled" if disabled else "Platform Enabled"
    return answer(message, render_stream(session, farm, restream))


@router.get("/{stream_id}/platform/{platform_id}/restart")
def restart_platform(
    stream_id: str,
    platform_id: str,
    session: SessionDep,
    farm: FarmDep,
    principal: KeyPrincipal,
) -> dict[str, Any]:
    number, platform = integer_id(stream_id, "stream"), integer_id(platform_id, "platform")
    pullstreams.restart_platform(session, farm, principal, number, platform)
    restream = pullstreams.stream(session, principal, number)
    return answer("Platform Restarted", render_stream(session, farm, restream))
