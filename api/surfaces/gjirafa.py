"""Gjirafa VP compatible surface: a project's live videos and their restream destinations.

Under `/api/v1/{projectId}`, with a key of that project in `Authorization` (as is, or after
`Bearer `). Every answer, errors included, is the vendor's envelope
`{success, errors, messages, result, resultInfo, statusCode}`. Destinations have integer
ids, as the vendor's clients expect. An adapter only: the rules live in
`common.vendors.gjirafa`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from api.auth import ProjectPrincipal
from api.deps import FarmDep, SessionDep
from api.errors import error_responses, surface_route
from api.surfaces import INTEGER_ID
from common.definitions.restream import TranscodingSpec
from common.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    Held,
    InvalidInput,
    MethodNotAllowed,
    NotAuthenticated,
    NotFound,
    NotSupportedYet,
    StreamfleetError,
    TooLarge,
    TooManyRequests,
    UriTooLong,
)
from common.lifecycle import service, views
from common.live import RestreamStats
from common.models import Restream
from common.vendors import gjirafa as videos

# The vendor's codes, each with its title; anything else is an internal error.
STATUSES: list[tuple[type[StreamfleetError], int, str]] = [
    (InvalidInput, 400, "Bad Request"),
    (Held, 409, "Conflict"),  # a hold is refused alike on every surface
    (Conflict, 400, "Bad Request"),
    (NotSupportedYet, 400, "Bad Request"),
    (MethodNotAllowed, 400, "Bad Request"),
    (NotAuthenticated, 401, "Unauthorized"),
    (Forbidden, 403, "Forbidden"),
    (NotFound, 404, "Result Not Found"),
    (UriTooLong, 414, "URI Too Long"),
    (TooLarge, 413, "Payload Too Large"),
    (TooManyRequests, 429, "Too Many Requests"),
    (BackendUnavailable, 503, "Backend Fetch Failed"),
]
INTERNAL = (500, "Internal Server Error")
# Field names of the schemas, as this surface's clients know them.
FIELD_NAMES = {"output_stream_url": "streamUrl", "output_stream_key": "streamKey"}


def envelope(result: Any, status: int = 200, messages: list[str] | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "success": True,
            "errors": [],
            "messages": messages or [],
            "result": result,
            "resultInfo": None,
            "statusCode": status,
        },
        status_code=status,
    )


def render_error(error: StreamfleetError) -> JSONResponse:
    status, title = next(
        ((code, title) for kind, code, title in STATUSES if isinstance(error, kind)), INTERNAL
    )
    details = [f"{_client_field(p.field)}: {p.message}" for p in error.problems]
    return JSONResponse(
        {
            "success": False,
            "errors": [title, *details],
            "messages": [error.message],
            "result": None,
            "resultInfo": None,
            "statusCode": status,
        },
        status_code=status,
        headers=error.headers,
    )


def _client_field(field: str) -> str:
    last = field.rsplit(".", 1)[-1]
    return FIELD_NAMES.get(last, field)


class GjirafaError(BaseModel):
    """Every answer of the Gjirafa VP surface, errors included: the vendor's envelope."""

    success: bool
    errors: list[str] = Field(description="The status's title, then `field: problem` lines.")
    messages: list[str]
    result: Any = None
    resultInfo: Any = None  # noqa: N815  (the vendor's name)
    statusCode: int  # noqa: N815


router = APIRouter(
    prefix="/api/v1/{project_id}",
    tags=["Gjirafa VP compatible"],
    responses=error_responses(
        GjirafaError,
        {
            **{code: title for _kind, code, title in STATUSES},
            500: "Internal Server Error",
        },
    ),
)
router.route_class = surface_route(render_error)


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class LiveVideoIn(_Body):
    title: str = Field(min_length=1, max_length=150, description="Name of the live video.")
    ingest_protocol: videos.Ingest = Field(
        videos.Ingest.RTMP,
        validation_alias=AliasChoices("ingestProtocol", "protocol"),
        description="How the publisher sends it: rtmp (a stream key in the URL) or srt (the "
        "key as passphrase).",
    )
    transcoding: TranscodingSpec | None = Field(
        None,
        description="Re-encode once for every destination (the Callaba transcoding fields); "
        "absent: passed through as published.",
    )


class GjirafaRestreamIn(_Body):
    video_id: str = Field(validation_alias=AliasChoices("videoId", "video_id"), min_length=1)
    title: str = Field(min_length=1, max_length=150)
    stream_url: str = Field(
        validation_alias=AliasChoices("streamUrl", "stream_url"),
        min_length=1,
        description="The platform's ingest URL (rtmp, rtmps, srt, rtsp, udp, http).",
    )
    stream_key: str | None = Field(
        None, validation_alias=AliasChoices("streamKey", "stream_key"), max_length=500
    )
    status: bool = Field(True, description="On (pushed while the live video runs) or off.")

    @field_validator("stream_key", mode="before")
    @classmethod
    def _blank_key(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value  # "": no key


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _kbps(stats: RestreamStats | None) -> int:
    return round(stats.bitrate_kbps) if stats and stats.bitrate_kbps is not None else 0


def _live_video(restream: Restream, destinations: int, now: views.Live) -> dict[str, Any]:
    definition = service.definition_of(restream)
    stats = now.of(restream)
    ingest = videos.ingest_of(restream, now)
    transcoding = definition.transcoding
    return {
        "id": restream.id,
        "title": videos.title_of(restream),
        "status": restream.active,
        "state": restream.state.value,
        "stateReason": restream.state_reason,
        "lastError": now.last_error(restream),
        "ingest": {
            "protocol": ingest.protocol.value,
            "url": ingest.server,
            "streamKey": ingest.stream_key,
            "publishUrl": ingest.publish_url,
        },
        "transcoding": transcoding.model_dump(mode="json", exclude_none=True)
        if transcoding
        else None,
        "node": restream.node_name,
        "bitrate": _kbps(stats),
        "restreams": destinations,
        "createdAt": _iso(restream.created_at),
    }


def _restream(restream: Restream, now: views.Live) -> dict[str, Any]:
    output = service.definition_of(restream).outputs[0]
    stats = now.of(restream)
    return {
        "id": restream.number,
        "videoId": restream.source_id,
        "title": videos.title_of(restream),
        "streamUrl": output.output_stream_url,
        "streamKey": output.output_stream_key,
        "status": restream.active,
        "state": restream.state.value,
        "stateReason": restream.state_reason,
        "lastError": now.last_error(restream),
        "bitrate": _kbps(stats),
        "createdAt": _iso(restream.created_at),
    }


def _number(restream_id: str) -> int:
    """Destination ids are integers; anything else names no destination."""
    if not INTEGER_ID.fullmatch(restream_id):
        raise videos.DestinationNotFound(restream_id)
    return int(restream_id)


@router.post("/live-videos")
def create_live_video(
    body: LiveVideoIn, session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    new = videos.NewVideo(body.title, body.ingest_protocol, body.transcoding)
    restream = videos.create_video(session, farm, principal, new)
    now = views.read(farm.redis, [restream])
    return envelope(_live_video(restream, 0, now), 201, ["Live video created"])


@router.get("/live-videos")
def list_live_videos(
    session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    found = videos.all_videos(session, principal)
    now = views.read(farm.redis, [video for video, _ in found])
    return envelope([_live_video(video, count, now) for video, count in found])


@router.get("/live-videos/{video_id}")
def get_live_video(
    video_id: str, session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    video = videos.video(session, principal, video_id)
    count = len(videos.destinations(session, principal, video_id))
    return envelope(_live_video(video, count, views.read(farm.redis, [video])))


@router.delete("/live-videos/{video_id}")
def delete_live_video(
    video_id: str, session: SessionDep, principal: ProjectPrincipal
) -> JSONResponse:
    videos.remove_video(session, principal, video_id)
    return envelope(None, messages=["Live video deleted"])


@router.post("/restreams")
def create_restream(
    body: GjirafaRestreamIn, session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    new = videos.NewDestination(body.title, body.stream_url, body.stream_key, body.status)
    restream = videos.add_destination(session, farm, principal, body.video_id, new)
    return envelope(_restream(restream, views.Live()), 201, ["Restream created"])


@router.get("/live-video/{video_id}/restreams")
def list_restreams(
    video_id: str, session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    rows = videos.destinations(session, principal, video_id)
    now = views.read(farm.redis, rows)
    return envelope([_restream(r, now) for r in rows])


@router.get("/restreams/{restream_id}")
def get_restream(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    restream = videos.destination(session, principal, _number(restream_id))
    return envelope(_restream(restream, views.read(farm.redis, [restream])))


@router.put("/restreams/{restream_id}/toggle")
def toggle_restream(
    restream_id: str, session: SessionDep, farm: FarmDep, principal: ProjectPrincipal
) -> JSONResponse:
    restream = videos.toggle(session, farm, principal, _number(restream_id))
    return envelope({"id": restream.number, "status": restream.active})


@router.delete("/restreams/{restream_id}")
def delete_restream(
    restream_id: str, session: SessionDep, principal: ProjectPrincipal
) -> JSONResponse:
    videos.remove_destination(session, principal, _number(restream_id))
    return envelope(None, messages=["Restream deleted"])
