"""What a list of restreams asks for besides its page (`Filters`), as SQL."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, or_

from common.definitions.states import Phase, RestreamState, RunState, shown
from common.models import Restream


@dataclass(frozen=True)
class Filters:
    """What a list asks for besides its page: restreams showing `state`, placed on `node`,
    whose name contains `name` (any case), of project `project_id`; `on_a_node`: only those
    placed on some node (or not yet stopped there)."""

    state: RestreamState | None = None
    node: str | None = None
    name: str | None = None
    project_id: str | None = None
    on_a_node: bool = False

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.state is not None:
            found.append(shows(self.state))
        if self.node is not None:
            found.append(Restream.node_name == self.node)
        if self.name:
            escaped = self.name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            found.append(Restream.name.ilike(f"%{escaped}%", escape="\\"))
        if self.project_id is not None:
            found.append(Restream.project_id == self.project_id)
        if self.on_a_node:
            found.append(Restream.node_name.is_not(None))
        return found


def shows(state: RestreamState) -> ColumnElement[bool]:
    """SQL for "shows `state`": every combination of phase, desire and current run that
    `shown` maps to it (a run of another generation counts as none)."""
    current = Restream.run_generation == Restream.generation
    no_run = or_(Restream.run_state.is_(None), Restream.run_generation.is_(None), ~current)
    cases: list[ColumnElement[bool]] = []
    for phase, active, run in itertools.product(Phase, (False, True), (None, *RunState)):
        if shown(phase, active, run) is state:
            has_run = no_run if run is None else and_(Restream.run_state == run, current)
            cases.append(and_(Restream.phase == phase, Restream.active.is_(active), has_run))
    return or_(false(), *cases)


EVERY = Filters()  # a list that asks for nothing more than its page
