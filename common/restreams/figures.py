"""The restream figures the farm's metrics read at scrape time: one statement each."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.definitions.states import Phase, RestreamState, shown
from common.models import Project, Restream


@dataclass(frozen=True)
class Shown:
    """One restream as the farm's metrics name it."""

    id: str
    name: str
    project_id: str
    project_name: str
    state: RestreamState


def shown_states(session: Session) -> list[Shown]:
    """Every restream with its name, project and the state it shows (`shown`), in one
    statement of plain columns."""
    current = Restream.run_generation == Restream.generation
    rows = session.execute(
        select(
            Restream.id,
            Restream.name,
            Restream.project_id,
            Project.name,
            Restream.phase,
            Restream.active,
            Restream.run_state,
            current,
        ).join(Project, Project.id == Restream.project_id)
    ).all()
    return [
        Shown(rid, name, project_id, project, shown(phase, active, run if is_current else None))
        for rid, name, project_id, project, phase, active, run, is_current in rows
    ]


def oldest_pending_s(session: Session) -> float:
    """How long the restream waiting longest for a node has waited (0: none waits)."""
    age = session.execute(
        select(func.extract("epoch", func.now() - func.min(Restream.phase_changed_at))).where(
            Restream.phase == Phase.PENDING
        )
    ).scalar_one()
    return max(0.0, float(age)) if age is not None else 0.0
