"""Projects and their API keys: who may create, see and revoke what. Never commits.

Farm-wide admin credentials manage every project. A project's `admin` key manages that
project's keys; `operator` and `viewer` keys manage no keys at all. A project is deleted only
when it holds no restream.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.accounts.principal import Principal, Role
from common.accounts.service import create_api_key
from common.errors import Conflict, Forbidden, NotFound
from common.ids import new_id
from common.models import ApiKey, Project, Restream


class ProjectNotFound(NotFound):
    def __init__(self, project_id: str) -> None:
        super().__init__(f"project {project_id} not found")


class KeyNotFound(NotFound):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} not found")


def _farm_admin(principal: Principal) -> None:
    if not principal.farm_wide or principal.role is not Role.ADMIN:
        raise Forbidden("only farm-wide admin credentials manage projects")


def visible(session: Session, principal: Principal, project_id: str) -> Project:
    """The project, if `principal` may see it; another project answers like a missing one."""
    project = session.get(Project, project_id)
    if project is None or not (principal.farm_wide or principal.project_id == project_id):
        raise ProjectNotFound(project_id)
    return project


def _key_admin(session: Session, principal: Principal, project_id: str) -> Project:
    project = visible(session, principal, project_id)
    if principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role.value} credential cannot manage keys; needs admin")
    return project


def create(session: Session, principal: Principal, name: str) -> Project:
    _farm_admin(principal)
    if session.execute(select(Project.id).where(Project.name == name)).first() is not None:
        raise Conflict(f"a project named {name!r} already exists")
    project = Project(id=new_id(), name=name)
    session.add(project)
    session.flush()
    return project


def listing(session: Session, principal: Principal) -> Sequence[Project]:
    statement = select(Project).order_by(Project.created_at, Project.id)
    if not principal.farm_wide:
        statement = statement.where(Project.id == principal.project_id)
    return list(session.execute(statement).scalars())


def delete(session: Session, principal: Principal, project_id: str) -> None:
    _farm_admin(principal)
    project = visible(session, principal, project_id)
    count = session.execute(
        select(func.count()).select_from(Restream).where(Restream.project_id == project_id)
    ).scalar_one()
    if count:
        raise Conflict(f"project {project.name!r} still has {count} restreams: remove them first")
    session.delete(project)


def new_key(
    session: Session, principal: Principal, project_id: str, name: str, role: Role
) -> tuple[ApiKey, str]:
    """A key of the project and its secret, which is shown this once and never again."""
    _key_admin(session, principal, project_id)
    return create_api_key(session, name, project_id=project_id, role=role)


def keys(session: Session, principal: Principal, project_id: str) -> Sequence[ApiKey]:
    _key_admin(session, principal, project_id)
    return list(
        session.execute(
            select(ApiKey).where(ApiKey.project_id == project_id).order_by(ApiKey.created_at)
        ).scalars()
    )


def revoke(session: Session, principal: Principal, project_id: str, key_id: str) -> ApiKey:
    """Revoke a key: refused from its next request on."""
    _key_admin(session, principal, project_id)
    key = session.get(ApiKey, key_id)
    if key is None or key.project_id != project_id:
        raise KeyNotFound(key_id)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    return key
