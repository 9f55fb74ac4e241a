"""Database models: one module per table, one metadata (`Base.metadata`) for Alembic."""

from common.models.account import ApiKey, User
from common.models.base import Base
from common.models.event import Event
from common.models.idempotency import IdempotencyKey
from common.models.node import Node
from common.models.project import Project
from common.models.restream import Restream
from common.models.run import Run
from common.models.server import Server
from common.models.webhook import Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "Base",
    "Event",
    "IdempotencyKey",
    "Node",
    "Project",
    "Restream",
    "Run",
    "Server",
    "User",
    "Webhook",
    "WebhookDelivery",
]
