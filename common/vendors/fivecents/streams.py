"""Pull streams: a restream that pulls a source, encodes it (or copies it), packages it for
playback and writes it to its node's relay. Draft, disabled and deleted are its holds, in the
core; its platforms follow it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from common.accounts.principal import Principal
from common.definitions.checks import split_url
from common.definitions.kinds import OutputType
from common.definitions.restream import InputSpec, OutputSpec, RestreamDefinition, TranscodingSpec
from common.definitions.states import Hold, Surface
from common.errors import FieldProblem, InvalidInput
from common.lifecycle import service
from common.lifecycle.service import Farm
from common.models import Restream
from common.restreams import repository
from common.vendors.fivecents.model import (
    ENCODES,
    MODES,
    PLAYBACK_OUTPUTS,
    PLAYBACK_SERVERS,
    Protocol,
    StreamFields,
    StreamNotFound,
    holds_of,
    is_stream,
)
from common.vendors.fivecents.servers import check_playback, node_selector


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
    holds = holds_of(current)
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
    follow_stream(session, farm, principal, restream)
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
            f"stream {number} is {_why_stopped(holds_of(current))}: it has nothing to restart"
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
    holds = holds_of(current) | {hold} if held else holds_of(current) - {hold}
    changes = service.Changes(
        active=not holds, attributes={**current.attributes, **attributes}, holds=holds
    )
    restream = service.update(session, farm, principal, current.id, changes)
    follow_stream(session, farm, principal, restream)
    return restream


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


BACKUP_OUTPUT = (1280, 720, 30)  # a stream with a backup URL: its output's size and rate


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
    check_playback(session, protocols, selector)
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
    if len(urls) > 2:
        message = "at most two url[mediaserver][]: the source and its backup"
        raise InvalidInput(message, [FieldProblem("url", message)])
    backup = None
    if len(urls) == 2:  # the backup: switched to when the source stops delivering
        backup_type = MODES.get(mode_of(urls[1]))
        if backup_type is None:
            message = f"the backup {urls[1]!r} is not a URL of a mode this farm pulls"
            raise InvalidInput(message, [FieldProblem("url", message)])
        backup = InputSpec(input_type=backup_type, input_stream_url=urls[1])
    # With a backup the output is encoded from what is on air, at a size and rate of its own
    # (the slate is made to them): BACKUP_OUTPUT, not the source's.
    width, height, fps = BACKUP_OUTPUT if backup else (None, None, None)
    try:
        return RestreamDefinition(
            input=InputSpec(input_type=input_type, input_stream_url=urls[0]),
            backup_input=backup,
            transcoding=TranscodingSpec(
                video_transcoding=video,
                preset=preset,
                copy_when_source_is=None if backup else same,
                audio_sync=bool(attributes.get("audiofix")) or None,
                frame_width=width,
                frame_height=height,
                filter_fps=fps,
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


def platforms(session: Session, source: Restream) -> list[Restream]:
    return repository.followers(session, source.id)


def platforms_of(session: Session, sources: Sequence[Restream]) -> dict[str, list[Restream]]:
    """Source id -> its platforms, for a page of streams at once."""
    return repository.followers_of(session, [s.id for s in sources])


def follow_stream(session: Session, farm: Farm, principal: Principal, source: Restream) -> None:
    """Platforms run while their stream should and they are not disabled themselves."""
    for follower in platforms(session, source):
        wanted = platform_active(source, holds_of(follower), follower.start_at)
        if wanted != follower.active:
            service.update(session, farm, principal, follower.id, service.Changes(active=wanted))


def platform_active(
    source: Restream, holds: frozenset[Hold], start_at: datetime | None = None
) -> bool:
    """A platform runs while its stream may, unless it is switched off itself or waits for
    the time its schedule starts it."""
    return not source.holds and not holds and start_at is None


def unique_name(session: Session, project_id: str, wanted: str) -> str:
    name, count = wanted[:180], 1
    while repository.name_taken(session, project_id, name):
        count += 1
        name = f"{wanted[:180]} ({count})"
    return name


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
