"""Pull streams and their platforms (the 5centsCDN model), made of restreams.

A pull stream is a restream that pulls a source URL, encodes it to the codec asked for (or
copies it when the source already has that codec), packages it for playback (HLS and DASH
served by its node's worker; RTMP and RTSP through the node's own servers) and writes it to
the node's relay. Each platform — a destination such as a social network's RTMP ingest — is a
restream of its own fed by that relay, so switching one on or off touches nothing else.

What the surface says about a stream (its name, the servers it may run on, `draft`,
`disabled`, a soft delete) is kept in the restream's attributes in the vendor's own words;
what runs is derived from them. Never commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy.orm import Session

from common.accounts.principal import Principal
from common.definitions.checks import split_url
from common.definitions.kinds import InputType, OutputType, Preset, VideoCodec
from common.definitions.node import NodeCapabilities
from common.definitions.restream import InputSpec, OutputSpec, RestreamDefinition, TranscodingSpec
from common.definitions.states import Hold, Surface
from common.errors import FieldProblem, InvalidInput, NotFound
from common.lifecycle import service
from common.lifecycle.service import Farm
from common.models import Node, Restream
from common.nodes import repository as node_repository
from common.restreams import repository

Codec = Literal["h264", "h265"]
# The encode asked for, and the source codec that makes it unnecessary.
ENCODES: dict[str, tuple[VideoCodec, Preset, Literal["h264", "hevc"]]] = {
    "h264": (VideoCodec.LIBX264, Preset.VERYFAST, "h264"),
    "h265": (VideoCodec.LIBX265, Preset.ULTRAFAST, "hevc"),
}
MODES: dict[str, InputType] = {
    "rtmp": InputType.RTMP_URL,
    "hls": InputType.HLS_URL,
    "http": InputType.HTTP_URL,
    "dash": InputType.MPEG_DASH_URL,
    "srt": InputType.SRT_URL,
    "rtsp": InputType.RTSP_URL,
    "udp": InputType.UDP_URL,
}
# Edge features of a CDN: shown disabled, refused when asked for.
CDN_ONLY = {
    "geoblock": "geoblocking",
    "securetoken": "secure tokens",
    "domainlock": "domain lock",
    "useragent": "user-agent rules",
    "ipaccess": "IP rules",
    "ndvr": "nDVR",
    "record": "recording",
    "adInsertion": "ad insertion",
    "rtmpauth": "RTMP publish authentication",
}


class Protocol(StrEnum):
    HLS = "HLS"
    DASH = "DASH"
    RTMP = "RTMP"
    RTSP = "RTSP"


PLAYBACK_OUTPUTS = {
    Protocol.HLS: OutputType.HLS,
    Protocol.DASH: OutputType.DASH,
    Protocol.RTMP: OutputType.LOCAL_RTMP_URL,
    Protocol.RTSP: OutputType.LOCAL_RTSP_URL,
}
# The node setting each server-bound playback needs.
PLAYBACK_SERVERS = {
    Protocol.RTMP: ("local_rtmp_url", "STREAMFLEET_LOCAL_RTMP_URL"),
    Protocol.RTSP: ("local_rtsp_url", "STREAMFLEET_LOCAL_RTSP_URL"),
}


class StreamNotFound(NotFound):
    def __init__(self, number: int | str) -> None:
        super().__init__(f"stream {number} not found")


class PlatformNotFound(NotFound):
    def __init__(self, number: int | str) -> None:
        super().__init__(f"platform {number} not found")


@dataclass(frozen=True)
class StreamFields:
    """What a request sets; None leaves a field as it is."""

    name: str | None = None
    codec: Codec | None = None
    urls: list[str] | None = None
    mode: str | None = None
    servers: str | None = None  # "11,211": server ids or region names, comma-separated
    protocols: list[Protocol] | None = None
    audiofix: bool | None = None
    draft: bool | None = None
    restreamtype: str | None = None
    platformtype: str | None = None


@dataclass(frozen=True)
class PlatformFields:
    name: str | None = None
    url: str | None = None
    key: str | None = None
    is_srt: bool | None = None
    disabled: bool | None = None


@dataclass(frozen=True)
class Server:
    """One server the farm offers (a `server` label, else a `region` label) and its nodes."""

    id: str
    label: Literal["server", "region"]  # the node label the id is a value of
    region: str | None
    nodes: list[str]


def is_stream(restream: Restream) -> bool:
    return restream.surface == Surface.FIVECENTS and restream.source_id is None


# -- streams -----------------------------------------------------------------------------------


def stream(session: Session, principal: Principal, number: int) -> Restream:
    restream = repository.by_number(session, number, principal.project_id)
    if restream is None or not is_stream(restream):
        raise StreamNotFound(number)
    return restream


def streams_page(
    session: Session, principal: Principal, *, page: int, per_page: int
) -> tuple[list[Restream], int]:
    """One page of the streams (deleted ones included, marked so), oldest first."""
    return repository.sources_of_surface(
        session,
        Surface.FIVECENTS,
        principal.project_id,
        limit=per_page,
        offset=(page - 1) * per_page,
    )


def create_stream(
    session: Session, farm: Farm, principal: Principal, fields: StreamFields
) -> Restream:
    """A stream; published (started) unless it is a draft."""
    missing = [
        FieldProblem(name, "required") for name in ("name", "url") if not _given(fields, name)
    ]
    if missing:
        raise InvalidInput(f"missing {', '.join(p.field for p in missing)}", missing)
    attributes = _merge({"deleted": None}, fields)
    definition = _definition(session, attributes)
    name = str(attributes["name"])
    holds = frozenset({Hold.DRAFT}) if fields.draft else frozenset()
    return service.create(
        session,
        farm,
        principal,
        name,
        definition,
        active=not holds,
        surface=Surface.FIVECENTS,
        attributes=attributes,
        holds=holds,
    )


def update_stream(
    session: Session, farm: Farm, principal: Principal, number: int, fields: StreamFields
) -> Restream:
    current = stream(session, principal, number)
    attributes = _merge(dict(current.attributes), fields)
    holds = _holds_of(current)
    if fields.draft is not None:
        holds = holds | {Hold.DRAFT} if fields.draft else holds - {Hold.DRAFT}
    changes = service.Changes(
        name=str(attributes["name"]) if fields.name else None,
        definition=_definition(session, attributes),
        active=not holds,
        attributes=attributes,
        holds=holds,
    )
    restream = service.update(session, farm, principal, current.id, changes)
    _follow_stream(session, farm, principal, restream)
    return restream


def set_disabled(
    session: Session, farm: Farm, principal: Principal, number: int, *, disabled: bool
) -> Restream:
    return _set(session, farm, principal, number, Hold.DISABLED, held=disabled)


def soft_delete(session: Session, farm: Farm, principal: Principal, number: int) -> Restream:
    """Status `Deleted`: its processes stop, its definition stays for `restore`."""
    return _set(session, farm, principal, number, Hold.DELETED, held=True, deleted=_now())


def restore(session: Session, farm: Farm, principal: Principal, number: int) -> Restream:
    return _set(session, farm, principal, number, Hold.DELETED, held=False, deleted=None)


def restart_stream(session: Session, farm: Farm, principal: Principal, number: int) -> Restream:
    """A fresh FFmpeg for a stream that should run; refused for one that should not."""
    current = stream(session, principal, number)
    if current.holds:
        raise InvalidInput(
            f"stream {number} is {_why_stopped(_holds_of(current))}: it has nothing to restart"
        )
    return service.restart(session, farm, principal, current.id)


def _set(
    session: Session,
    farm: Farm,
    principal: Principal,
    number: int,
    hold: Hold,
    *,
    held: bool,
    **attributes: Any,
) -> Restream:
    """Put `hold` on the stream or lift it (and note `attributes`); it runs once none is left,
    and its platforms follow it."""
    current = stream(session, principal, number)
    holds = _holds_of(current) | {hold} if held else _holds_of(current) - {hold}
    changes = service.Changes(
        active=not holds, attributes={**current.attributes, **attributes}, holds=holds
    )
    restream = service.update(session, farm, principal, current.id, changes)
    _follow_stream(session, farm, principal, restream)
    return restream


def _holds_of(restream: Restream) -> frozenset[Hold]:
    return frozenset(Hold(h) for h in restream.holds)


def _why_stopped(holds: frozenset[Hold]) -> str:
    if Hold.DELETED in holds:
        return "deleted"
    return "disabled" if Hold.DISABLED in holds else "a draft"


def _given(fields: StreamFields, name: str) -> bool:
    return bool(fields.urls) if name == "url" else bool(getattr(fields, name))


def _merge(attributes: dict[str, Any], fields: StreamFields) -> dict[str, Any]:
    given = {
        "name": fields.name,
        "codec": fields.codec,
        "urls": fields.urls,
        "mode": fields.mode,
        "server": fields.servers,
        "protocols": [p.value for p in fields.protocols] if fields.protocols is not None else None,
        "audiofix": fields.audiofix,
        "restreamtype": fields.restreamtype,
        "platformtype": fields.platformtype,
    }
    merged = {**attributes, **{k: v for k, v in given.items() if v is not None}}
    merged.setdefault("codec", "h264")
    merged.setdefault("protocols", [Protocol.HLS.value])
    merged.setdefault("restreamtype", "mediaserver")
    merged.setdefault("audiofix", False)
    return merged


def parts_of(name: str) -> dict[str, str]:
    """ "pp/sn" -> {pp, sn, full}."""
    pp, _, sn = name.partition("/")
    return {"pp": pp, "sn": sn, "full": pp + sn}


def _definition(session: Session, attributes: dict[str, Any]) -> RestreamDefinition:
    """What runs for a stream with these attributes."""
    urls = list(attributes["urls"])
    mode = (attributes.get("mode") or mode_of(urls[0])).lower()
    input_type = MODES.get(mode)
    if input_type is None:
        message = f"mode must be one of {', '.join(MODES)} (got {mode!r})"
        raise InvalidInput(message, [FieldProblem("mode", message)])
    video, preset, same = ENCODES[attributes["codec"]]
    selector = node_selector(session, attributes.get("server"))
    protocols = [Protocol(p) for p in attributes["protocols"]]
    _check_playback(session, protocols, selector)
    key = parts_of(str(attributes["name"]))["full"]
    outputs = [OutputSpec(output_type=OutputType.RELAY)]
    try:
        for protocol in protocols:
            stream_key = key if protocol in PLAYBACK_SERVERS else None
            outputs.append(
                OutputSpec(output_type=PLAYBACK_OUTPUTS[protocol], output_stream_key=stream_key)
            )
    except ValidationError as error:  # the name is the key of RTMP/RTSP playback
        reasons = [str(e["msg"]).removeprefix("Value error, ") for e in error.errors()]
        message = "name: the key of RTMP/RTSP playback: " + "; ".join(
            r.replace("output_stream_key ", "it ") for r in reasons
        )
        raise InvalidInput(message, [FieldProblem("name", message)]) from error
    try:
        return RestreamDefinition(
            input=InputSpec(input_type=input_type, input_stream_url=urls[0]),
            transcoding=TranscodingSpec(
                video_transcoding=video,
                preset=preset,
                copy_when_source_is=same,
                audio_sync=bool(attributes.get("audiofix")) or None,
            ),
            outputs=outputs,
            node_selector=selector,
        )
    except ValidationError as error:
        problems = [
            FieldProblem("url", e["msg"].removeprefix("Value error, ")) for e in error.errors()
        ]
        raise InvalidInput("; ".join(p.message for p in problems), problems) from error


def mode_of(url: str) -> str:
    """The pull mode a source URL implies when `mode` is not given."""
    parts = split_url(url, "url")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        path = parts.path.lower()
        return "hls" if path.endswith(".m3u8") else "dash" if path.endswith(".mpd") else "http"
    return {"rtmps": "rtmp", "rtsps": "rtsp"}.get(scheme, scheme)


# -- servers (regions) ---------------------------------------------------------------------------


def servers(session: Session) -> list[Server]:
    """The farm's servers: nodes grouped by their `server` label, else their `region` label."""
    found: dict[str, Server] = {}
    for node in node_repository.all_nodes(session):
        labels = _labels(node)
        label: Literal["server", "region"] = "server" if "server" in labels else "region"
        key = labels.get(label)
        if key is None:
            continue
        server = found.setdefault(key, Server(key, label, labels.get("region"), []))
        server.nodes.append(node.name)
    return sorted(found.values(), key=lambda s: (not s.id.isdigit(), s.id.zfill(12)))


def node_selector(session: Session, value: str | None) -> dict[str, list[str]] | None:
    """`server[mediaserver]` ("11,211", or region names) as a node selector; every value must
    name a server or a region of the farm."""
    wanted = [v.strip() for v in (value or "").split(",") if v.strip()]
    if not wanted:
        return None
    known = {s.id: s.label for s in servers(session)}
    regions = dict.fromkeys(_regions(session), "region")
    labelled = {**regions, **known}  # a server id wins over a region of the same name
    unknown = [v for v in wanted if v not in labelled]
    if unknown:
        message = (
            f"unknown server {', '.join(unknown)}: the farm's servers are "
            f"{', '.join(known) or 'none yet (label nodes with server= or region=)'}"
            + (f"; its regions {', '.join(sorted(regions))}" if regions else "")
        )
        raise InvalidInput(message, [FieldProblem("server", message)])
    selector: dict[str, list[str]] = {}
    for wanted_id in wanted:
        selector.setdefault(labelled[wanted_id], []).append(wanted_id)
    if len(selector) > 1:
        message = "give server ids or region names, not both"
        raise InvalidInput(message, [FieldProblem("server", message)])
    return selector


def _regions(session: Session) -> set[str]:
    """The `region` labels of the farm's nodes."""
    found = set()
    for node in node_repository.all_nodes(session):
        region = _labels(node).get("region")
        if region:
            found.add(region)
    return found


def _check_playback(
    session: Session, protocols: Sequence[Protocol], selector: dict[str, list[str]] | None
) -> None:
    """RTMP and RTSP playback need one node of the selected servers with every such server
    the stream asks for."""
    needed = [p for p in protocols if p in PLAYBACK_SERVERS]
    if not needed:
        return
    offers = [
        NodeCapabilities.model_validate(n.capabilities) for n in node_repository.all_nodes(session)
    ]
    offers = [o for o in offers if _selected(o.labels, selector)]
    for protocol in needed:
        offers = [o for o in offers if getattr(o, PLAYBACK_SERVERS[protocol][0])]
        if not offers:
            where = "of the selected servers " if selector else ""
            servers_ = " and ".join(f"{p.value} server ({PLAYBACK_SERVERS[p][1]})" for p in needed)
            message = (
                f"{' and '.join(p.value for p in needed)} playback needs a node {where}with "
                f"its own {servers_}; none has {'them all' if len(needed) > 1 else 'one'}"
            )
            raise InvalidInput(message, [FieldProblem("protocols", message)])


def _labels(node: Node) -> dict[str, str]:
    """A node's labels: as its worker advertises them, else as last stored."""
    return NodeCapabilities.model_validate(node.capabilities).labels or dict(node.labels or {})


def _selected(labels: dict[str, str], selector: dict[str, list[str]] | None) -> bool:
    return all(labels.get(k) in values for k, values in (selector or {}).items())


# -- platforms -----------------------------------------------------------------------------------


def platforms(session: Session, source: Restream) -> list[Restream]:
    return repository.followers(session, source.id)


def platforms_of(session: Session, sources: Sequence[Restream]) -> dict[str, list[Restream]]:
    """Source id -> its platforms, for a page of streams at once."""
    return repository.followers_of(session, [s.id for s in sources])


def platform(session: Session, principal: Principal, number: int, platform_number: int) -> Restream:
    source = stream(session, principal, number)
    restream = repository.by_number(session, platform_number, principal.project_id)
    if restream is None or restream.source_id != source.id:
        raise PlatformNotFound(platform_number)
    return restream


def add_platform(
    session: Session, farm: Farm, principal: Principal, number: int, fields: PlatformFields
) -> Restream:
    source = stream(session, principal, number)
    if not fields.url:
        problem = FieldProblem("platform.rtmp", "required: the platform's ingest URL")
        raise InvalidInput("missing platform[rtmp]", [problem])
    attributes = _platform_merge({}, fields)
    host = split_url(attributes["url"], "platform.rtmp").hostname
    name = f"{source.name} to {attributes['name'] or host}"
    holds = frozenset({Hold.DISABLED}) if fields.disabled else frozenset()
    return service.create(
        session,
        farm,
        principal,
        _unique_name(session, source.project_id, name),
        _platform_definition(source, attributes),
        active=_platform_active(source, holds),
        surface=Surface.FIVECENTS,
        attributes=attributes,
        holds=holds,
    )


def update_platform(
    session: Session,
    farm: Farm,
    principal: Principal,
    number: int,
    platform_number: int,
    *,
    fields: PlatformFields,
) -> Restream:
    current = platform(session, principal, number, platform_number)
    source = stream(session, principal, number)
    attributes = _platform_merge(dict(current.attributes), fields)
    holds = _holds_of(current)
    if fields.disabled is not None:
        holds = holds | {Hold.DISABLED} if fields.disabled else holds - {Hold.DISABLED}
    changes = service.Changes(
        definition=_platform_definition(source, attributes),
        active=_platform_active(source, holds),
        attributes=attributes,
        holds=holds,
    )
    return service.update(session, farm, principal, current.id, changes)


def restart_platform(
    session: Session, farm: Farm, principal: Principal, number: int, platform_number: int
) -> Restream:
    current = platform(session, principal, number, platform_number)
    source = stream(session, principal, number)
    if not _platform_active(source, _holds_of(current)):
        raise InvalidInput(f"platform {platform_number} is disabled: it has nothing to restart")
    return service.restart(session, farm, principal, current.id)


def _follow_stream(session: Session, farm: Farm, principal: Principal, source: Restream) -> None:
    """Platforms run while their stream should and they are not disabled themselves."""
    for follower in platforms(session, source):
        wanted = _platform_active(source, _holds_of(follower))
        if wanted != follower.active:
            service.update(session, farm, principal, follower.id, service.Changes(active=wanted))


def _platform_active(source: Restream, holds: frozenset[Hold]) -> bool:
    """A platform runs while its stream may, unless it is switched off itself."""
    return not source.holds and not holds


def _platform_merge(attributes: dict[str, Any], fields: PlatformFields) -> dict[str, Any]:
    given = {
        "name": fields.name,
        "url": fields.url,
        "key": fields.key,
        "isSRT": fields.is_srt,
    }
    merged = {**attributes, **{k: v for k, v in given.items() if v is not None}}
    merged.setdefault("name", "")
    merged.setdefault("key", "")
    if fields.is_srt is None and (fields.url is not None or "isSRT" not in merged):
        url = str(merged.get("url", ""))
        merged["isSRT"] = split_url(url, "platform.rtmp").scheme == "srt"  # follows the URL
    return merged


def _platform_definition(source: Restream, attributes: dict[str, Any]) -> RestreamDefinition:
    url, key = str(attributes["url"]).strip(), str(attributes.get("key") or "").strip()
    try:
        if attributes.get("isSRT"):
            target = url if not key else f"{url}{'&' if '?' in url else '?'}streamid={key}"
            output = OutputSpec(output_type=OutputType.SRT_URL, output_stream_url=target)
        else:
            output = OutputSpec(
                output_type=OutputType.OTHER_RTMP_URL,
                output_stream_url=url,
                output_stream_key=key or None,
            )
    except ValidationError as error:
        problems = [
            FieldProblem("platform.rtmp", e["msg"].removeprefix("Value error, "))
            for e in error.errors()
        ]
        raise InvalidInput("; ".join(p.message for p in problems), problems) from error
    return RestreamDefinition(
        input=InputSpec(input_type=InputType.RELAY, input_relay_id=source.id), outputs=[output]
    )


def _unique_name(session: Session, project_id: str, wanted: str) -> str:
    name, count = wanted[:180], 1
    while repository.name_taken(session, project_id, name):
        count += 1
        name = f"{wanted[:180]} ({count})"
    return name


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
