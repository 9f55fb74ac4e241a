"""Who a request acts as, and what that lets it see."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything in its scope, including credentials
    OPERATOR = "operator"  # create, change, start and stop restreams
    VIEWER = "viewer"  # read only


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `project_id` None means farm-wide (every project)."""

    subject: str  # "user:<id>" or "key:<prefix>"
    role: Role
    project_id: str | None

    @property
    def farm_wide(self) -> bool:
        return self.project_id is None
