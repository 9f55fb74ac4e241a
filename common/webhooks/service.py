"""A project's webhooks: made, listed, changed and removed by its admins; their deliveries."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.accounts import projects
from common.accounts.principal import Principal, Role
from common.definitions.checks import check_url
from common.errors import FieldProblem, Forbidden, InvalidInput, NotFound
from common.events import TYPES
from common.ids import new_id
from common.models import Webhook, WebhookDelivery

SCHEMES = frozenset({"http", "https"})


class WebhookNotFound(NotFound):
    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"no webhook {webhook_id}")


def create(
    session: Session,
    principal: Principal,
    project_id: str,
    *,
    url: str,
    kinds: Sequence[str],
    secret: str | None,
) -> Webhook:
    _admin(session, principal, project_id)
    hook = Webhook(
        id=new_id(),
        project_id=project_id,
        url=checked_url(url),
        secret=secret or secrets.token_urlsafe(32),
        kinds=checked_kinds(kinds),
        active=True,
    )
    session.add(hook)
    session.flush()
    return hook


def listing(session: Session, principal: Principal, project_id: str) -> Sequence[Webhook]:
    _admin(session, principal, project_id)
    query = select(Webhook).where(Webhook.project_id == project_id).order_by(Webhook.id)
    return list(session.execute(query).scalars())


def get(session: Session, principal: Principal, project_id: str, webhook_id: str) -> Webhook:
    _admin(session, principal, project_id)
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.project_id != project_id:
        raise WebhookNotFound(webhook_id)
    return hook


def deliveries(
    session: Session, principal: Principal, project_id: str, webhook_id: str, *, limit: int
) -> Sequence[WebhookDelivery]:
    """Its newest deliveries first."""
    hook = get(session, principal, project_id, webhook_id)
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == hook.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def checked_url(url: str) -> str:
    try:
        return check_url(url, SCHEMES, "url")
    except ValueError as error:
        raise InvalidInput(str(error), [FieldProblem("url", str(error))]) from None


def checked_kinds(kinds: Sequence[str]) -> list[str]:
    unknown = [k for k in kinds if k not in TYPES]
    if unknown:
        message = f"unknown event type {unknown[0]!r}; one of {', '.join(TYPES)}"
        raise InvalidInput(message, [FieldProblem("events", message)])
    return sorted(set(kinds))


def _admin(session: Session, principal: Principal, project_id: str) -> None:
    projects.visible(session, principal, project_id)
    if principal.role is not Role.ADMIN:
        raise Forbidden(f"a {principal.role.value} credential cannot manage webhooks; needs admin")
