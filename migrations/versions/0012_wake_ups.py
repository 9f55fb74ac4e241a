"""wake-ups (common.wakeups): NOTIFY when a media server's row changes, or a webhook delivery
is written or its webhook resumes (for the workers), and when anything a reconcile round
reads changes (for the reconciler)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 13:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Row triggers: they fire only where rows change (a statement changing none notifies no one),
# and PostgreSQL sends one notification per channel and transaction, at its commit.
WAKE_UPS = """
CREATE FUNCTION streamfleet_wake() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_ARGV[0], '');
    RETURN NULL;
END
$$;
CREATE TRIGGER servers_wake AFTER INSERT OR UPDATE OR DELETE ON servers
    FOR EACH ROW EXECUTE FUNCTION streamfleet_wake('streamfleet_servers');
CREATE TRIGGER webhook_deliveries_wake AFTER INSERT ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION streamfleet_wake('streamfleet_webhooks');
CREATE TRIGGER webhooks_wake AFTER UPDATE OF active ON webhooks
    FOR EACH ROW WHEN (NEW.active AND NOT OLD.active)
    EXECUTE FUNCTION streamfleet_wake('streamfleet_webhooks');
"""
# What a reconcile round reads: any statement that writes these, even one that changes no
# row, tells the reconciler its farm is not at rest (common.reconcile.rest).
FARM_TABLES = ("restreams", "nodes", "servers")
FARM = "".join(
    f"CREATE TRIGGER {table}_farm_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
    f" FOR EACH STATEMENT EXECUTE FUNCTION streamfleet_wake('streamfleet_farm');\n"
    for table in FARM_TABLES
)


def upgrade() -> None:
    op.execute(WAKE_UPS)
    op.execute(FARM)


def downgrade() -> None:
    for table in FARM_TABLES:
        op.execute(f"DROP TRIGGER {table}_farm_changed ON {table}")
    op.execute("DROP TRIGGER webhooks_wake ON webhooks")
    op.execute("DROP TRIGGER webhook_deliveries_wake ON webhook_deliveries")
    op.execute("DROP TRIGGER servers_wake ON servers")
    op.execute("DROP FUNCTION streamfleet_wake()")
