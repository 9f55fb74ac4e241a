"""What a 5centsCDN client sends: its key (within its rate), and bodies as JSON or forms with
flat bracket keys (`server[mediaserver]`, `url[mediaserver][]`), parsed into the vendor
rules' fields."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api.auth import Credential
from api.deps import SessionDep, StateDep
from api.errors import invalid_request
from api.surfaces import INTEGER_ID
from common.accounts import service as accounts
from common.accounts.principal import Principal
from common.definitions.checks import build
from common.definitions.schedule import Schedule
from common.errors import (
    FieldProblem,
    InvalidInput,
    NotAuthenticated,
    TooManyRequests,
)
from common.ratelimit import RateLimiter
from common.vendors import fivecents as pullstreams
from common.vendors.fivecents import PlatformFields, Protocol, StreamFields

TRUE = {"y", "yes", "1", "true", "on"}
_BRACKETS = re.compile(r"\[([^\]]*)\]")


# -- who is calling ----------------------------------------------------------------------------


def key_principal(
    session: SessionDep,
    state: StateDep,
    x_api_key: Credential = None,
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
    schedule: Literal["instant", "scheduled"] | None = Field(
        None, description="instant: it runs with its stream; scheduled: from scheduletime on."
    )
    scheduletime: str | None = Field(
        None, description="When a scheduled platform starts: YYYY-MM-DD HH:MM:SS (UTC) or ISO 8601."
    )
    length: str | None = Field(
        None,
        pattern=r"^\d{1,3}:[0-5]\d(:[0-5]\d)?$",
        description="Its longest run, hh:mm or hh:mm:ss; 00:00: no limit.",
    )

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
        schedule, clear = self._schedule()
        return PlatformFields(
            name=self.name,
            url=self.rtmp,
            key=self.key,
            is_srt=self.isSRT,
            disabled=self.disabled,
            schedule=schedule,
            clear_schedule=clear,
        )

    def _schedule(self) -> tuple[Schedule | None, bool]:
        """The schedule given (None, False: none given); (None, True): none any more."""
        if self.schedule is None and self.scheduletime is None and self.length is None:
            return None, False
        start_at = None
        if self.schedule == "scheduled" or (self.schedule is None and self.scheduletime):
            start_at = vendor_time(self.scheduletime, "platform.scheduletime")
        duration_s = None
        if self.length:
            parts = [int(part) for part in self.length.split(":")] + [0]
            duration_s = parts[0] * 3600 + parts[1] * 60 + parts[2] or None
        if start_at is None and duration_s is None:
            return None, True
        return build(Schedule, start_at=start_at, duration_s=duration_s), False


def vendor_time(text: str | None, field: str) -> datetime:
    """A time as 5centsCDN writes them (`2026-04-01 14:04:46`, UTC), or ISO 8601 with a zone."""
    if not text:
        raise InvalidInput(f"missing {field}", [FieldProblem(field, "required when scheduled")])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        problem = FieldProblem(field, f"{text!r} is not YYYY-MM-DD HH:MM:SS (UTC)")
        raise InvalidInput(f"invalid {field}", [problem]) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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


def disabled_flag(data: dict[str, Any]) -> bool:
    if "disabled" not in data or data["disabled"] in (None, ""):
        raise InvalidInput("missing disabled: 0 or 1", [FieldProblem("disabled", "required")])
    body: _StatusBody = parse(_StatusBody, {"disabled": _flag_input(data["disabled"])})
    return body.disabled


def integer_id(value: str, kind: str) -> int:
    if not INTEGER_ID.fullmatch(value):
        raise (
            pullstreams.StreamNotFound(value)
            if kind == "stream"
            else pullstreams.PlatformNotFound(value)
        )
    return int(value)
