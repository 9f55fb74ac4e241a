"""The native surface's projects and API keys: `/v1/projects`, `/v1/projects/{id}/keys`."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from api.auth import BearerPrincipal
from api.deps import SessionDep
from api.errors import surface_route
from api.surfaces.native import ERRORS, render_error
from common.accounts import projects
from common.accounts.principal import Role
from common.models import ApiKey, Project

router = APIRouter(prefix="/v1", tags=["native: projects"], responses=ERRORS)
router.route_class = surface_route(render_error)


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class ProjectOut(BaseModel):
    id: str
    name: str
    created_at: datetime


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, description="What the key is for.")
    role: Role = Field(Role.OPERATOR, description="admin, operator or viewer.")


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's recognisable start; the secret is never shown.")
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKeyOut(KeyOut):
    key: str = Field(description="The key itself: shown this once, never again.")


def _project(row: Project) -> ProjectOut:
    return ProjectOut(id=row.id, name=row.name, created_at=row.created_at)


def _key(row: ApiKey) -> KeyOut:
    return KeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=row.role,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


@router.post("/projects", status_code=201)
def create_project(body: ProjectIn, session: SessionDep, principal: BearerPrincipal) -> ProjectOut:
    return _project(projects.create(session, principal, body.name))


@router.get("/projects")
def list_projects(session: SessionDep, principal: BearerPrincipal) -> list[ProjectOut]:
    return [_project(p) for p in projects.listing(session, principal)]


@router.get("/projects/{project_id}")
def get_project(project_id: str, session: SessionDep, principal: BearerPrincipal) -> ProjectOut:
    return _project(projects.visible(session, principal, project_id))


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(project_id: str, session: SessionDep, principal: BearerPrincipal) -> Response:
    projects.delete(session, principal, project_id)
    return Response(status_code=204)


@router.post("/projects/{project_id}/keys", status_code=201)
def create_key(
    project_id: str, body: KeyIn, session: SessionDep, principal: BearerPrincipal
) -> NewKeyOut:
    row, plaintext = projects.new_key(session, principal, project_id, body.name, body.role)
    return NewKeyOut(**_key(row).model_dump(), key=plaintext)


@router.get("/projects/{project_id}/keys")
def list_keys(project_id: str, session: SessionDep, principal: BearerPrincipal) -> list[KeyOut]:
    return [_key(k) for k in projects.keys(session, principal, project_id)]


@router.delete("/projects/{project_id}/keys/{key_id}")
def revoke_key(
    project_id: str, key_id: str, session: SessionDep, principal: BearerPrincipal
) -> KeyOut:
    return _key(projects.revoke(session, principal, project_id, key_id))
