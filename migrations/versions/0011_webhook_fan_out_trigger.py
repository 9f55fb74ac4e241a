"""webhook deliveries written by a trigger on events, in the event's own statement

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The body is `common.events.as_json(event)` to the byte (a test compares them); retried for
# `common.webhooks.RETRY_FOR` (24 h) from the event.
FAN_OUT = """
CREATE FUNCTION webhook_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event_id, body, state, attempts, next_at,
                                    give_up_at)
    SELECT w.id, NEW.id,
           jsonb_build_object(
               'id', NEW.id,
               'type', NEW.subject_kind || '.' || NEW.kind,
               'at', to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00',
               'subject', jsonb_build_object('kind', NEW.subject_kind, 'id', NEW.subject_id),
               'project_id', NEW.project_id,
               'from_state', NEW.from_state,
               'to_state', NEW.to_state,
               'reason', NEW.reason,
               'node', NEW.node_name,
               'generation', NEW.generation),
           'pending', 0, NEW.at, NEW.at + interval '24 hours'
    FROM webhooks w
    WHERE w.project_id = NEW.project_id
      AND w.active
      -- Nothing here may raise (a failure would fail the change that records the event): no
      -- jsonb_array_length, which does on a scalar; kinds that are not a list mean every type.
      AND (w.kinds = '[]'::jsonb OR jsonb_typeof(w.kinds) <> 'array'
           OR w.kinds ? (NEW.subject_kind || '.' || NEW.kind));
    RETURN NULL;
END
$$;
CREATE TRIGGER events_webhook_fan_out AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.project_id IS NOT NULL) EXECUTE FUNCTION webhook_fan_out();
"""


def upgrade() -> None:
    op.execute(FAN_OUT)


def downgrade() -> None:
    op.execute("DROP TRIGGER events_webhook_fan_out ON events")
    op.execute("DROP FUNCTION webhook_fan_out()")
