"""What the 5centsCDN surface answers: its envelope, its errors, streams and platforms as the
vendor shows them, playback URLs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.errors import Problem
from common import live
from common.definitions.kinds import OutputType
from common.definitions.node import NodeCapabilities
from common.definitions.states import Hold, RestreamState
from common.errors import (
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    StreamfleetError,
    TooManyRequests,
)
from common.ffmpeg.outputs import DASH_MANIFEST, HLS_PLAYLIST
from common.lifecycle import service, views
from common.lifecycle.service import Farm
from common.live import RestreamStats
from common.models import Restream
from common.vendors import fivecents as pullstreams

AUTH_ERRORS = (NotAuthenticated, Forbidden, TooManyRequests)
# Playback through the node's own media server: the key in `playbackurls`, the capability.
SERVER_PLAYBACK = {
    OutputType.LOCAL_RTMP_URL: ("rtmp", "local_rtmp_url"),
    OutputType.LOCAL_RTSP_URL: ("rtsp", "local_rtsp_url"),
}


# A platform's schedule, named as the platform's fields that carry it.
FIELD_NAMES = {
    "schedule.start_at": "platform.scheduletime",
    "schedule.duration_s": "platform.length",
    "duration_s": "platform.length",
    "schedule": "platform.schedule",
    "scheduletime": "platform.scheduletime",
    "length": "platform.length",
}


def render_error(error: StreamfleetError) -> JSONResponse:
    if isinstance(error, AUTH_ERRORS):
        return JSONResponse(
            {"status": "error", "errors": [{"code": error.status, "message": error.message}]},
            status_code=error.status,
            headers=error.headers,
        )
    status = 400 if isinstance(error, InvalidInput) else error.status
    message = error.message
    for ours, theirs in FIELD_NAMES.items():
        if "." in ours:  # a path of ours; a bare word may be any word of the message
            message = message.replace(ours, theirs)
    return JSONResponse(
        {
            "result": "error",
            "message": message,
            "errors": [
                {"field": FIELD_NAMES.get(p.field, p.field), "message": p.message}
                for p in error.problems
            ]
            or None,
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
    live: views.Live


def known_about(session: Session, farm: Farm, streams: Sequence[Restream]) -> Known:
    platforms = pullstreams.platforms_of(session, streams)
    everyone = [*streams, *(p for some in platforms.values() for p in some)]
    return Known(
        servers=pullstreams.servers(session),
        platforms=platforms,
        live=views.read(farm.redis, everyone),
    )


def render_stream(
    session: Session, farm: Farm, restream: Restream, known: Known | None = None
) -> dict[str, Any]:
    """The vendor's stream object. `known`: read for a whole page by `known_about`."""
    known = known or known_about(session, farm, [restream])
    attributes = restream.attributes
    protocols = [str(p) for p in attributes.get("protocols", [])]
    followers = known.platforms[restream.id]
    now = known.live
    own = now.of(restream)
    playback = _playback(restream, now.leases.get(restream.node_name or ""))
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
        "lastError": now.last_error(restream),
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
        "platforms": [render_platform(p, now, restream.number) for p in followers],
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
    definition = service.definition_of(restream)
    played = views.Live(leases={lease.node: lease}).playback(restream, definition)
    for output in definition.outputs:
        if output.output_type is OutputType.HLS and str(output.id) in played:
            urls["hls"] = played[str(output.id)]
        elif output.output_type is OutputType.DASH and str(output.id) in played:
            urls["dash"] = played[str(output.id)]
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


def render_platform(restream: Restream, now: views.Live, stream_number: int) -> dict[str, Any]:
    attributes = restream.attributes
    stats = now.of(restream)
    return {
        "id": restream.number,
        "rtmp": attributes.get("url"),
        "auth": "N",
        "username": "",
        "password": "",
        "isSRT": bool(attributes.get("isSRT")),
        "key": attributes.get("key", ""),
        "schedule": "scheduled" if restream.start_at else "instant",
        "scheduletime": _when(restream.start_at),
        "codec": None,
        "length": _length(restream.run_for_s),
        "relid": stream_number,
        "dedicatedLTC": "0",
        "transcode": {"ltc": 0, "type": "mixed", "enabled": False, "isEditable": False},
        "disabled": _flag(Hold.DISABLED in restream.holds),
        "name": attributes.get("name", ""),
        "platform_id": 0,
        "provider_id": 0,
        "video_id": "",
        "state": restream.state.value,
        "lastError": now.last_error(restream),
        "bitrate": kbps(stats),
    }


def _length(seconds: int | None) -> str:
    """A longest run as 5centsCDN writes it: hh:mm, or hh:mm:ss when it has seconds."""
    hours, rest = divmod(seconds or 0, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def kbps(stats: RestreamStats | None) -> int:
    return round(stats.bitrate_kbps) if stats and stats.bitrate_kbps is not None else 0
