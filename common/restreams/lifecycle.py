"""Changing a restream's observed state: through the transition table, with an event."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from common import events
from common.models import Restream
from common.restreams.states import RESTREAM_TRANSITIONS, RestreamState


def transition(session: Session, restream: Restream, target: RestreamState, reason: str) -> None:
    """Move `restream` to `target` (raises `IllegalTransition` if undeclared) and record why."""
    current = restream.state
    RESTREAM_TRANSITIONS.check(current, target)
    restream.state = target
    restream.state_reason = reason
    restream.state_changed_at = datetime.now(UTC)
    events.record(
        session,
        subject_kind=events.RESTREAM,
        subject_id=restream.id,
        project_id=restream.project_id,
        from_state=current.value,
        to_state=target.value,
        reason=reason,
        node_name=restream.node_name,
        generation=restream.generation,
    )
