"""Callaba Engine compatible surface: `/api/auth/login` and `/api/restream/*`.

Shapes follow the vendor's restream documentation: POST everywhere (DELETE for remove), the
id in the JSON body, ObjectId-like ids, `x-access-token` from the login. Keys real clients
are known to read are added beside the documented ones (`_id` on create, `ok` on
start/stop/remove). An adapter only: every rule lives in `common.lifecycle.service`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.auth import Credential, TokenPrincipal, login_claims
from api.deps import FarmDep, SessionDep, StateDep, reads_only
from api.errors import Problem, error_responses, surface_route
from common.accounts import revocations, security
from common.accounts import service as accounts
from common.definitions.checks import build
from common.definitions.kinds import InputType
from common.definitions.restream import InputSpec, OutputSpec, RestreamDefinition, TranscodingSpec
from common.definitions.states import Surface
from common.errors import (
    FieldProblem,
    InvalidInput,
    NotAuthenticated,
    NotSupportedYet,
    StreamfleetError,
)
from common.ids import is_object_id
from common.lifecycle import service, views
from common.live import RestreamStats
from common.models import Restream
from common.restreams.repository import Summary, iso_ms


def render_error(error: StreamfleetError) -> JSONResponse:
    status = 400 if isinstance(error, InvalidInput) else error.status
    return JSONResponse(
        {
            "success": False,
            "message": error.message,
            "errors": [{"field": p.field, "message": p.message} for p in error.problems],
        },
        status_code=status,
        headers=error.headers,
    )


class CallabaError(BaseModel):
    """Every error of the Callaba Engine surface."""

    success: bool = Field(False)
    message: str
    errors: list[Problem]


router = APIRouter(
    prefix="/api",
    tags=["Callaba Engine compatible"],
    responses=error_responses(
        CallabaError,
        {
            400: "Invalid input: `errors` names each field and what is allowed.",
            401: "No login token (or API key) in x-access-token, or an expired one.",
            404: "No such restream.",
            409: "A conflict: the name or the listen port is taken.",
            413: "The body or the URL is too large.",
            422: "Documented, but not supported by this farm yet.",
            429: "Too many failed logins: wait Retry-After seconds.",
            503: "PostgreSQL or Redis unreachable, or busy (then with Retry-After).",
        },
    ),
)
router.route_class = surface_route(render_error)


class LoginBody(BaseModel):
    email: str
    password: str


class IdBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(description="24-hex ObjectId of the restream.")

    @field_validator("id", mode="before")
    @classmethod
    def _object_id(cls, value: Any) -> Any:
        if isinstance(value, dict) and "$oid" in value:  # MongoDB extended JSON
            value = value["$oid"]
        if not isinstance(value, str) or not is_object_id(value.strip().lower()):
            raise ValueError("id must be a 24-character hexadecimal ObjectId")
        return value.strip().lower()


class RestreamBody(BaseModel):
    """create/update body. `input` and `output` may be one object or a list of them."""

    model_config = ConfigDict(extra="ignore")
    restream_name: str | None = Field(None, min_length=1, max_length=200)
    input: list[InputSpec] | None = None
    transcoding: TranscodingSpec | None = None
    output: list[OutputSpec] | None = Field(None, min_length=1, max_length=16)
    active: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            for key in ("input", "output"):
                if isinstance(data.get(key), dict):
                    data[key] = [data[key]]
            if isinstance(data.get("transcoding"), str):
                data["transcoding"] = None  # "Disabled": no transcoding
        return data


class UpdateBody(RestreamBody, IdBody):
    pass


def _inputs(inputs: list[InputSpec]) -> tuple[InputSpec, InputSpec | None]:
    """The list the doc keeps for several inputs: the input, then its backup (continuity)."""
    if not inputs:
        raise InvalidInput("input must not be empty", [FieldProblem("input", "required")])
    if len(inputs) > 2:
        raise NotSupportedYet("at most two inputs: the input and its backup")
    return inputs[0], inputs[1] if len(inputs) > 1 else None


def _summary(restream: Summary) -> dict[str, Any]:
    return {
        "id": restream.id,
        "restream_name": restream.name,
        "restream_type": restream.restream_type,
        "active": restream.active,
        "created": restream.created,
        "modified": restream.modified,
    }


def _input_doc(spec: InputSpec) -> dict[str, Any]:
    test_fields = {
        "encoding_rate",
        "sound_hz",
        "resolution_width",
        "resolution_height",
        "video_duration_sec",
        "test_video_bitrate",
    }
    exclude = None if spec.input_type is InputType.GENERATE_TEST_VIDEO else test_fields
    return spec.model_dump(mode="json", exclude_none=True, exclude=exclude)


def _transcoding_doc(spec: TranscodingSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    doc = spec.model_dump(mode="json", exclude_none=True)
    if "audio_transcoding" in doc:
        doc["audio_trancoding"] = doc["audio_transcoding"]  # the documented spelling
    return doc


def _details(restream: Restream, now: views.Live) -> dict[str, Any]:
    definition = service.definition_of(restream)
    stats = now.of(restream)
    source = _input_doc(definition.input)
    if definition.input.input_stream_listen_port is not None:
        source["ingest_url"] = now.ingest_url(restream, definition)  # where to publish, once placed
    backup = [_input_doc(definition.backup_input)] if definition.backup_input else []
    return {
        "input": [source, *backup],
        "output": [o.model_dump(mode="json", exclude_none=True) for o in definition.outputs],
        "transcoding": _transcoding_doc(definition.transcoding),
        **_summary(Summary.of(restream)),
        "state": restream.state.value,
        "state_reason": restream.state_reason,
        "last_error": now.last_error(restream),
        "node": restream.node_name,
        "bitrate": _kbps(stats),
        "stats": stats.model_dump(mode="json") if stats else None,
    }


def _kbps(stats: RestreamStats | None) -> int:
    return round(stats.bitrate_kbps) if stats and stats.bitrate_kbps is not None else 0


@router.post("/auth/login")
def login(
    body: LoginBody, request: Request, session: SessionDep, state: StateDep
) -> dict[str, Any]:
    address = request.client.host if request.client else "unknown"
    user = accounts.login(session, state.throttle, body.email, body.password, address=address)
    secret = state.settings.jwt_secret
    assert secret is not None  # create_app refuses to start without it
    token = security.issue_token(user.id, secret.get_secret_value(), state.settings.jwt_ttl_s)
    return {"success": True, "token": token}


@router.post("/auth/logout")
def logout(state: StateDep, x_access_token: Credential = None) -> dict[str, Any]:
    """Revoke the login token in `x-access-token`: refused from now on, by every replica."""
    if not x_access_token:
        raise NotAuthenticated("missing x-access-token")
    revocations.revoke(state.redis, login_claims(state, x_access_token))
    return {"success": True, "ok": True}


@router.post("/restream/create")
def create(
    body: RestreamBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
) -> dict[str, Any]:
    missing = [
        FieldProblem(name, "required")
        for name in ("restream_name", "input", "output")
        if getattr(body, name) is None
    ]
    if missing:
        raise InvalidInput(f"missing {', '.join(p.field for p in missing)}", missing)
    assert body.restream_name is not None
    assert body.input is not None
    assert body.output is not None
    primary, backup = _inputs(body.input)
    definition = build(
        RestreamDefinition,
        input=primary,
        backup_input=backup,
        transcoding=body.transcoding,
        outputs=body.output,
    )
    restream = service.create(
        session,
        farm,
        principal,
        body.restream_name,
        definition,
        active=True if body.active is None else body.active,
        surface=Surface.CALLABA,
    )
    return {"id": restream.id, "_id": restream.id, "created": iso_ms(restream.created_at)}


@router.post("/restream/update")
def update(
    body: UpdateBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
) -> dict[str, Any]:
    current = service.get(session, principal, body.id)
    definition = None
    if body.input is not None or body.output is not None or "transcoding" in body.model_fields_set:
        old = service.definition_of(current)
        primary, backup = _inputs(body.input) if body.input is not None else (old.input, None)
        definition = build(
            RestreamDefinition,
            input=primary,
            backup_input=backup if body.input is not None else old.backup_input,
            continuity=old.continuity if body.input is None or backup is not None else None,
            transcoding=(
                body.transcoding if "transcoding" in body.model_fields_set else old.transcoding
            ),
            outputs=body.output if body.output is not None else old.outputs,
            node_selector=old.node_selector,
        )
    restream = service.update(
        session,
        farm,
        principal,
        body.id,
        service.Changes(name=body.restream_name, definition=definition, active=body.active),
    )
    return {"id": restream.id, "updated": iso_ms(restream.modified_at), "success": True}


@router.post("/restream/start")
def start(
    body: IdBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
) -> dict[str, Any]:
    service.start(session, farm, principal, body.id)
    return {"success": True, "ok": True}


@router.post("/restream/stop")
def stop(body: IdBody, session: SessionDep, principal: TokenPrincipal) -> dict[str, Any]:
    service.stop(session, principal, body.id)
    return {"success": True, "ok": True}


@router.delete("/restream/remove")
def remove(
    body: Annotated[IdBody, Body()], session: SessionDep, principal: TokenPrincipal
) -> dict[str, Any]:
    service.remove(session, principal, body.id)
    return {"success": True, "ok": True}


@router.post("/restream/getAll")
@reads_only
def get_all(session: SessionDep, principal: TokenPrincipal) -> list[dict[str, Any]]:
    return [_summary(r) for r in service.summaries(session, principal)]


@router.post("/restream/getCount")
def get_count(session: SessionDep, principal: TokenPrincipal) -> dict[str, int]:
    return {"count": service.count(session, principal)}


@router.post("/restream/getById")
@reads_only
def get_by_id(
    body: IdBody, session: SessionDep, farm: FarmDep, principal: TokenPrincipal
) -> dict[str, Any]:
    restream = service.get(session, principal, body.id)
    return _details(restream, views.read(farm.redis, [restream]))


@router.post("/restream/getProcessData", include_in_schema=False)  # the doc's example's path
@router.post("/restream/getStat")
def get_stat(session: SessionDep, farm: FarmDep, principal: TokenPrincipal) -> list[dict[str, Any]]:
    restreams = service.list_all(session, principal)
    now = views.read(farm.redis, restreams)
    return [{"id": r.id, "bitrate": _kbps(now.of(r))} for r in restreams]
