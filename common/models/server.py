from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from common.definitions.server import ServerKind, ServerSpec, ServerState
from common.models.base import Base, enum_column, utc_timestamp


class Server(Base):
    """A media server module (SRT or RTMP) and where it runs.

    Desired (the API): `spec`, `active`. Control plane (`common.lifecycle.servers` alone):
    `node_name` and `reason` (why it waits). Observed (its node's worker alone): `run_node`,
    `run_state` and `run_reason`, of the node that reported. What surfaces show is derived
    from both (`shown`).
    """

    __tablename__ = "servers"
    # Names are unique per kind, as Callaba's SRT and RTMP modules keep theirs apart.
    __table_args__ = (
        UniqueConstraint("project_id", "kind", "name", name="uq_servers_project_kind_name"),
    )

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    project_id: Mapped[str] = mapped_column(
        ForeignKey("projects.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[ServerKind] = mapped_column(enum_column(ServerKind, "server_kind"))
    name: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONB)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    node_name: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.name", ondelete="SET NULL"), nullable=True, index=True
    )
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_node: Mapped[str | None] = mapped_column(String(128), nullable=True)
    run_state: Mapped[ServerState | None] = mapped_column(
        enum_column(ServerState, "server_run_state"), nullable=True
    )
    run_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = utc_timestamp()
    modified_at: Mapped[datetime] = utc_timestamp()

    @property
    def settings(self) -> ServerSpec:
        return ServerSpec.model_validate(self.spec)

    @property
    def shown(self) -> ServerState:
        """The state surfaces show: the worker's report counts only for the node that runs
        it now."""
        if not self.active:
            return ServerState.STOPPED
        if self.node_name is None:
            return ServerState.PENDING
        if self.run_node == self.node_name and self.run_state is not None:
            return self.run_state
        return ServerState.STARTING

    @property
    def shown_reason(self) -> str | None:
        return self.run_reason if self.shown is ServerState.FAILED else self.reason
