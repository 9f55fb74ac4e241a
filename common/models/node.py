from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from common.definitions.states import NodeState
from common.models.base import Base, enum_column, utc_timestamp


class Node(Base):
    """A worker node as the control plane knows it. Liveness itself is the Redis lease."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[NodeState] = mapped_column(
        enum_column(NodeState, "node_state"), default=NodeState.ACTIVE
    )
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    labels: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    created_at: Mapped[datetime] = utc_timestamp()
    registered_at: Mapped[datetime] = utc_timestamp()
    state_changed_at: Mapped[datetime] = utc_timestamp()
