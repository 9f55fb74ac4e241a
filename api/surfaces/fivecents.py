"""5centsCDN compatible surface: pull streams (`/v2/streams/restream`) and their platforms.

`X-API-Key` carries a key (of a project, or farm-wide). Bodies come as JSON or form-encoded,
with keys flat in bracket form (`server[mediaserver]`, `url[mediaserver][]`,
`platform[name]`) or nested; `_METHOD` overrides the verb as the vendor's clients send it.
Answers are `{result, message, stream}`; authentication failures and the rate limit answer
`{status: "error", errors: [{code, message}]}`. Stream and platform ids are integers. An adapter
only: the rules live in `common.vendors.fivecents`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.orm import Session

from api.deps import FarmDep, SessionDep, StateDep
from api.errors import Problem, error_responses, invalid_request, surface_route
from api.surfaces import INTEGER_ID
from common import live
from common.accounts import service as accounts
from common.accounts.principal import Principal
from common.definitions.node import NodeCapabilities
from common.definitions.restream import OutputType
from common.definitions.states import Hold, RestreamState
from common.errors import (
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    StreamfleetError,
    TooManyRequests,
)
from common.ffmpeg.argv import DASH_MANIFEST, HLS_PLAYLIST
from common.lifecycle import service
from common.lifecycle.service import Farm
from common.live import RestreamStats
from common.models import Restream
from common.ratelimit import RateLimiter
from common.vendors import fivecents as pullstreams
from common.vendors.fivecents import PlatformFields, Protocol, StreamFields

PER_PAGE = 50
AUTH_ERRORS = (NotAuthenticated, Forbidden, TooManyRequests)
TRUE = {"y", "yes", "1", "true", "on"}
_BRACKETS = re.compile(r"\[([^\]]*)\]")
# Playback through the node's own media server: the key in `playbackurls`, the capability.
SERVER_PLAYBACK = {
    OutputType.LOCAL_RTMP_URL: ("rtmp", "local_rtmp_url"),
    OutputType.LOCAL_RTSP_URL: ("rtsp", "local_rtsp_url"),
}


def render_error(error: StreamfleetError) -> JSONResponse:
    if isinstance(error, AUTH_ERRORS):
        return JSONResponse(
            {"status": "error", "errors": [{"code": error.status, "message": error.message}]},
            status_code=error.status,
            headers=error.headers,
        )
    status = 400 if isinstance(error, InvalidInput) else error.status
    return JSONResponse(
        {
            "result": "error",
            "message": error.message,
            "errors": [{"field": p.field, "message": p.message} for p in error.problems] or None,
        },
        status_code=status,
        headers=error.headers,
    )


class CdnError(BaseModel):
    """Errors of the 5centsCDN surface; authentication ones (401, 403, 429) are
    `{status: "error", errors: [{code, message}]}` instead, as the vendor answers them."""

    result: str = Field("error")
    message: str
    errors: list[Problem] | None = None


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


# -- who is calling ----------------------------------------------------------------------------


def key_principal(
    session: SessionDep,
    state: StateDep,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Principal:
    """The caller: an API key in `X-API-Key`, within its rate."""
    if not x_api_key or not x_api_key.strip():
        raise NotAuthenticated("API key is missing: send it in the X-API-Key header")
    try:
        principal = accounts.authenticate_key(session, x_api_key.strip())
    except NotAuthenticated as error:
        raise NotAuthenticated("Invalid API key") from error
    rate = state.settings.cdn_api_requests_per_s
    if rate:
        limiter = RateLimiter(state.redis, limit=rate, window_s=1.0, prefix="ratelimit:v2")
        if not limiter.admit(principal.subject):
            raise TooManyRequests(f"Too many requests: at most {rate} a second per API key")
    return principal


KeyPrincipal = Annotated[Principal, Depends(key_principal)]


# -- bodies --------------------------------------------------------------------------------------


async def body_of(request: Request, _caller: KeyPrincipal) -> dict[str, Any]:
    """The request body as nested data, whatever its encoding and key style. Parsed only once
    the caller is known (and within its rate): a stranger learns nothing from a bad body."""
    raw = await request.body()
    if not raw.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        text = raw.decode()  # UTF-8: the surface's route checked (api.errors.refuse_unstorable)
        pairs: list[tuple[str, Any]] = parse_qsl(text, keep_blank_values=True)
    elif kind in ("", "application/json", "text/plain"):
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise InvalidInput(f"the body is not JSON: {error}") from error
        if not isinstance(data, dict):
            raise InvalidInput("the body must be a JSON object")
        pairs = list(data.items())
    else:
        raise InvalidInput(
            f"send JSON or application/x-www-form-urlencoded, not {kind}",
            [FieldProblem("body", "unsupported content type")],
        )
    return unflatten(pairs)


Body = Annotated[dict[str, Any], Depends(body_of)]


def unflatten(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """{"url[mediaserver][]": "x"} -> {"url": {"mediaserver": ["x"]}}; nested values stay."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        path = [head, *_BRACKETS.findall("[" + rest)] if rest else [head]
        node = result
        for index, part in enumerate(path):
            last = index == len(path) - 1
            following = None if last else path[index + 1]
            if part == "":  # "[]": append
                continue
            if last:
                node[part] = value
            elif following == "" and index + 2 == len(path):
                existing = node.setdefault(part, [])
                if not isinstance(existing, list):  # "a=x&a[]=y": both values count
                    existing = node[part] = [existing]
                existing.extend(value if isinstance(value, list) else [value])
                break
            else:
                child = node.setdefault(part, {})
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return result


def _mediaserver(value: Any) -> Any:
    """`{"mediaserver": x}` (the only restream type the vendor documents) -> x."""
    if isinstance(value, dict):
        return value.get("mediaserver", next(iter(value.values()), None))
    return value


def _yes(value: Any) -> bool:
    return str(value).strip().lower() in TRUE


def _flag_input(value: Any) -> Any:
    """A yes/no flag as given, for pydantic's bool: "Y", "n", 1, "0", true... An unknown
    word then fails validation, naming the field, rather than reading as "no"."""
    return value.strip().lower() if isinstance(value, str) else value


class StreamBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, min_length=1, max_length=200, description='"pp/sn"')
    codec: pullstreams.Codec | None = None
    server: str | None = None
    protocols: list[Protocol] | None = None
    url: list[str] | None = None
    mode: str | None = None
    audiofix: bool | None = None
    draft: bool | None = None
    restreamtype: str | None = None
    platformtype: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: _mediaserver(v) for k, v in data.items()}
        for key in ("codec", "mode"):
            if isinstance(data.get(key), str):
                data[key] = data[key].strip().lower() or None
        if isinstance(data.get("server"), list):
            data["server"] = ",".join(str(s) for s in data["server"])
        if isinstance(data.get("server"), int):
            data["server"] = str(data["server"])
        protocols = data.get("protocols")
        if isinstance(protocols, str):
            protocols = [p for p in protocols.split(",") if p.strip()]
        if isinstance(protocols, list):
            data["protocols"] = [str(p).strip().upper() for p in protocols]
        if isinstance(data.get("url"), str):
            data["url"] = [data["url"]]
        for flag in ("audiofix", "draft"):
            if flag in data and data[flag] not in (None, ""):
                data[flag] = _flag_input(data[flag])
            else:
                data.pop(flag, None)
        return {k: v for k, v in data.items() if v != ""}

    @field_validator("url")
    @classmethod
    def _urls(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        urls = [u.strip() for u in value if u and u.strip()]
        return urls or None

    def fields(self) -> StreamFields:
        return StreamFields(
            name=self.name,
            codec=self.codec,
            urls=self.url,
            mode=self.mode,
            servers=self.server,
            protocols=self.protocols,
            audiofix=self.audiofix,
            draft=self.draft,
            restreamtype=self.restreamtype,
            platformtype=self.platformtype,
        )


class PlatformBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str | None = Field(None, max_length=150)
    rtmp: str | None = Field(None, description="The platform's ingest URL.")
    key: str | None = Field(None, max_length=500)
    isSRT: bool | None = None  # noqa: N815  (the vendor's key)
    disabled: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        nested = data.get("platform")
        cleaned: dict[str, Any] = dict(nested if isinstance(nested, dict) else data)
        if "url" in cleaned and "rtmp" not in cleaned:
            cleaned["rtmp"] = cleaned["url"]
        for flag in ("isSRT", "disabled"):
            if flag in cleaned and cleaned[flag] not in (None, ""):
                cleaned[flag] = _flag_input(cleaned[flag])
            else:
                cleaned.pop(flag, None)
        return cleaned

    def fields(self) -> PlatformFields:
        return PlatformFields(
            name=self.name, url=self.rtmp, key=self.key, is_srt=self.isSRT, disabled=self.disabled
        )


def parse(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise invalid_request(error.errors()) from error


def refuse_cdn_features(data: dict[str, Any]) -> None:
    """A request that turns on an edge feature of a CDN is refused, naming it."""
    for key, feature in pullstreams.CDN_ONLY.items():
        value = data.get(key)
        switches = (
            [value.get("enabled"), value.get("active")] if isinstance(value, dict) else [value]
        )
        if any(s is not None and _yes(s) for s in switches):
            message = (
                f"{key}: {feature} is a feature of a CDN's edge, which streamfleet (a "
                "transcoding farm) does not have; put a CDN in front of the playback URLs"
            )
            raise InvalidInput(message, [FieldProblem(key, "not available on this farm")])


class _StatusBody(BaseModel):
    disabled: bool


def _disabled_flag(data: dict[str, Any]) -> bool:
    if "disabled" not in data or data["disabled"] in (None, ""):
        raise InvalidInput("missing disabled: 0 or 1", [FieldProblem("disabled", "required")])
    body: _StatusBody = parse(_StatusBody, {"disabled": _flag_input(data["disabled"])})
    return body.disabled


def _number(value: str, kind: str) -> int:
    if not INTEGER_ID.fullmatch(value):
        raise (
            pullstreams.StreamNotFound(value)
            if kind == "stream"
            else pullstreams.PlatformNotFound(value)
        )
    return int(value)


# -- what is answered ---------------------------------------------------------------------------


def answer(message: str, stream: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "result": "success",
        "message": message,
        "stream": stream,
        "warnings": None,
        "errors": None,
    }


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _flag(value: Any) -> str:
    return "1" if value else "0"


def status_of(restream: Restream) -> str:
    holds = restream.holds
    if Hold.DELETED in holds:
        return "Deleted"
    if Hold.DISABLED in holds:
        return "Disabled"
    if Hold.DRAFT in holds:
        return "Draft"
    return "Enabled" if restream.state is RestreamState.RUNNING else "Deploying"


def _off(**extra: Any) -> dict[str, Any]:
    return {"enabled": "N", "policy": "N", "list": "", "ips": "", "active": "N", **extra}


@dataclass(frozen=True)
class Known:
    """What rendering streams needs beside their rows, read once for a whole page: the farm's
    servers, each stream's platforms, their live statistics, the leases of their nodes."""

    servers: Sequence[pullstreams.Server]
    platforms: dict[str, list[Restream]]
    stats: dict[str, RestreamStats]
    leases: dict[str, live.NodeLease]


def known_about(session: Session, farm: Farm, streams: Sequence[Restream]) -> Known:
    platforms = pullstreams.platforms_of(session, streams)
    everyone = [*streams, *(p for some in platforms.values() for p in some)]
    nodes = sorted({s.node_name for s in streams if s.node_name is not None})
    return Known(
        servers=pullstreams.servers(session),
        platforms=platforms,
        stats=service.live_stats(farm, everyone),
        leases=live.read_leases(farm.redis, nodes),
    )


def render_stream(
    session: Session, farm: Farm, restream: Restream, known: Known | None = None
) -> dict[str, Any]:
    """The vendor's stream object. `known`: read for a whole page by `known_about`."""
    known = known or known_about(session, farm, [restream])
    attributes = restream.attributes
    protocols = [str(p) for p in attributes.get("protocols", [])]
    followers = known.platforms[restream.id]
    stats = known.stats
    own = stats.get(restream.id)
    playback = _playback(restream, known.leases.get(restream.node_name or ""))
    return {
        "monitoring_id": None,
        "type": "restream",
        "id": restream.number,
        "serviceid": None,
        "name": restream.name,
        "codec": attributes.get("codec"),
        "ingests": [],
        "protocols": [protocols],
        "parentid": None,
        "server": attributes.get("server") or "",
        "backup": "",
        "dedicatedLTC": "0",
        "hasAdvancedFeatures": "0",
        "monitoring_triggers": None,
        "draft": _flag(Hold.DRAFT in restream.holds),
        "disabled": _flag(Hold.DISABLED in restream.holds),
        "created_at": _when(restream.created_at),
        "updated_at": _when(restream.modified_at),
        "lastseen_at": _when(datetime.fromtimestamp(own.updated_at, UTC)) if own else None,
        "deleted": attributes.get("deleted"),
        "ingestsLock": 0,
        "protocolsLock": 0,
        "status": status_of(restream),
        "state": restream.state.value,
        "stateReason": restream.state_reason,
        "lastError": restream.last_error or (own.last_error if own else None),
        "node": restream.node_name,
        "has": {
            "rtmp": int("RTMP" in protocols),
            "rtsp": int("RTSP" in protocols),
            "hls": int("HLS" in protocols),
            "dash": int("DASH" in protocols),
            "rtmpauth": False,
        },
        "parts": pullstreams.parts_of(restream.name),
        "restream": {
            "type": attributes.get("restreamtype", "mediaserver"),
            "mode": attributes.get("mode") or None,
            "urls": attributes.get("urls", []),
            "staticip": "N",
            "audiofix": "Y" if attributes.get("audiofix") else "N",
            "server": {"country": _regions(known.servers, attributes.get("server"))},
        },
        "playbackurls": playback,
        "platformsCount": len(followers),
        "ssl_enabled": playback["scheme"] == "https",
        "hash": pullstreams.parts_of(restream.name)["full"],
        "ndvr": {"enabled": "N", "retention": "0"},
        "securetoken": _off(keyip="N", timeout=0, session="0", dirs=None),
        "record": None,
        "domainlock": _off(noreferer="Y"),
        "geoblock": _off(list=[]),
        "ipaccess": _off(),
        "useragent": _off(casesensitive="N", listArr=[]),
        "rtmpauth": {"password": "", "active": "N"},
        "transcode": {"ltc": 0, "type": "mixed", "enabled": True, "isEditable": True},
        "platforms": [render_platform(p, stats.get(p.id), restream.number) for p in followers],
        "messages": {},
        "adInsertion": None,
    }


def _regions(servers: Sequence[pullstreams.Server], server: Any) -> str | None:
    wanted = {v.strip() for v in str(server or "").split(",") if v.strip()}
    regions = sorted({s.region or s.id for s in servers if wanted & {s.id, s.region}})
    return ", ".join(regions) or None


def _playback(restream: Restream, lease: live.NodeLease | None) -> dict[str, Any]:
    """Where viewers play it: the URLs of its node (`lease`) once placed (None until then)."""
    capabilities = lease.capabilities if lease is not None else NodeCapabilities()
    base = capabilities.playback_base_url
    urls: dict[str, Any] = {
        "scheme": str(base).split(":", 1)[0] if base else None,
        "url_prefix": base,
        "rtmp": None,
        "rtsp": None,
        "hlsManifest": HLS_PLAYLIST,
        "dashManifest": DASH_MANIFEST,
        "hls": None,
        "dash": None,
        "players": {},
        "tokenized": None,
    }
    if lease is None:
        return urls
    for output in service.definition_of(restream).outputs:
        if output.output_type is OutputType.HLS and base:
            urls["hls"] = f"{base}/live/{restream.id}/{output.id}/{HLS_PLAYLIST}"
        elif output.output_type is OutputType.DASH and base:
            urls["dash"] = f"{base}/live/{restream.id}/{output.id}/{DASH_MANIFEST}"
        elif output.output_type in SERVER_PLAYBACK:
            protocol, capability = SERVER_PLAYBACK[output.output_type]
            server = reachable(getattr(capabilities, capability), lease.address)
            urls[protocol] = output.target_url(server) if server else None
    return urls


def reachable(server_url: Any, node_address: str) -> str | None:
    """The node's own media server as viewers reach it: a loopback host (where the worker
    publishes) becomes the node's address."""
    if not server_url:
        return None
    parts = urlsplit(str(server_url))
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return str(server_url)
    host = f"[{node_address}]" if ":" in node_address else node_address
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{host}{port}"))


def render_platform(
    restream: Restream, stats: RestreamStats | None, stream_number: int
) -> dict[str, Any]:
    attributes = restream.attributes
    return {
        "id": restream.number,
        "rtmp": attributes.get("url"),
        "auth": "N",
        "username": "",
        "password": "",
        "isSRT": bool(attributes.get("isSRT")),
        "key": attributes.get("key", ""),
        "schedule": "instant",
        "scheduletime": None,
        "codec": None,
        "length": "00:00",
        "relid": stream_number,
        "dedicatedLTC": "0",
        "transcode": {"ltc": 0, "type": "mixed", "enabled": False, "isEditable": False},
        "disabled": _flag(Hold.DISABLED in restream.holds),
        "name": attributes.get("name", ""),
        "platform_id": 0,
        "provider_id": 0,
        "video_id": "",
        "state": restream.state.value,
        "lastError": restream.last_error or (stats.last_error if stats else None),
        "bitrate": _kbps(stats),
    }


def _kbps(stats: RestreamStats | None) -> int:
    return round(stats.bitrate_kbps) if stats and stats.bitrate_kbps is not None else 0


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
    restream = pullstreams.stream(session, principal, _number(stream_id, "stream"))
    return answer("Stream Found", render_stream(session, farm, restream))


@router.post("/{stream_id}")
def update_stream(
    stream_id: str, body: Body, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    number = _number(stream_id, "stream")
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
    restream = pullstreams.soft_delete(session, farm, principal, _number(stream_id, "stream"))
    return answer("Stream Deleted", render_stream(session, farm, restream))


@router.get("/{stream_id}/restore")
def restore_stream(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.restore(session, farm, principal, _number(stream_id, "stream"))
    return answer("Stream Restored", render_stream(session, farm, restream))


@router.get("/{stream_id}/restart")
def restart_stream(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.restart_stream(session, farm, principal, _number(stream_id, "stream"))
    return answer("Stream Restarted", render_stream(session, farm, restream))


@router.post("/{stream_id}/status")
def stream_status(
    stream_id: str, body: Body, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    disabled = _disabled_flag(body)
    restream = pullstreams.set_disabled(
        session, farm, principal, _number(stream_id, "stream"), disabled=disabled
    )
    return answer(
        "Stream Disabled" if disabled else "Stream Enabled", render_stream(session, farm, restream)
    )


@router.get("/{stream_id}/statistics")
def stream_statistics(
    stream_id: str, session: SessionDep, farm: FarmDep, principal: KeyPrincipal
) -> dict[str, Any]:
    restream = pullstreams.stream(session, principal, _number(stream_id, "stream"))
    followers = pullstreams.platforms(session, restream)
    stats = service.live_stats(farm, [restream, *followers])
    own = stats.get(restream.id)
    alive = restream.state is RestreamState.RUNNING and own is not None
    return {
        "result": "success",
        "statistics": {
            "fs": {
                "status": "Alive" if alive else "Dead",
                "bitrate": _kbps(own),
                "fps": own.fps if own else None,
                "speed": own.speed if own else None,
                "uptime": round(own.uptime_s) if own else 0,
                "restarts": own.restarts if own else 0,
            },
            "platforms": [
                {
                    "id": p.number,
                    "status": "Alive"
                    if p.state is RestreamState.RUNNING and p.id in stats
                    else "Dead",
                    "bitrate": _kbps(stats.get(p.id)),
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
    number = _number(stream_id, "stream")
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
    number, platform = _number(stream_id, "stream"), _number(platform_id, "platform")
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
    number, platform = _number(stream_id, "stream"), _number(platform_id, "platform")
    disabled = _disabled_flag(body)
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
    number, platform = _number(stream_id, "stream"), _number(platform_id, "platform")
    pullstreams.restart_platform(session, farm, principal, number, platform)
    restream = pullstreams.stream(session, principal, number)
    return answer("Platform Restarted", render_stream(session, farm, restream))
