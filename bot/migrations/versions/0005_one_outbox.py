"""One outbox: notices become deliveries (no broadcast, their own text and buttons, a priority).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)
NOTICES = sa.text("broadcast_id IS NULL")
GIVEN_UP = 5  # the attempts after which the old notifier stopped trying


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("broadcast_id", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("priority", sa.Integer, nullable=False, server_default="2"))
        batch.add_column(sa.Column("text", sa.Text))
        batch.add_column(sa.Column("buttons", sa.JSON))
    op.create_index(
        "ix_deliveries_notices",
        "deliveries",
        ["state", "priority", "id"],
        sqlite_where=NOTICES,
        postgresql_where=NOTICES,
    )
    op.execute(
        "INSERT INTO deliveries (broadcast_id, channel, user_id, state, attempts, last_error,"
        " updated_at, priority, text, buttons)"
        " SELECT NULL, channel, user_id,"
        " CASE WHEN sent_at IS NOT NULL THEN 'sent'"
        f" WHEN attempts >= {GIVEN_UP} THEN 'failed' ELSE 'pending' END,"
        " attempts, last_error, COALESCE(sent_at, created_at), 0, text, buttons"
        " FROM notifications ORDER BY id"
    )
    op.drop_table("notifications")


def downgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("buttons", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_notifications_pending", "notifications", ["sent_at", "channel"])
    op.execute(
        "INSERT INTO notifications (channel, user_id, text, buttons, created_at, sent_at,"
        " attempts, last_error)"
        " SELECT channel, user_id, text, COALESCE(buttons, '[]'), updated_at,"
        " CASE WHEN state = 'sent' THEN updated_at END,"
        f" CASE WHEN state IN ('failed', 'blocked') AND attempts < {GIVEN_UP} THEN {GIVEN_UP}"
        " ELSE attempts END, last_error"
        " FROM deliveries WHERE broadcast_id IS NULL ORDER BY id"
    )
    op.execute("DELETE FROM deliveries WHERE broadcast_id IS NULL")
    op.drop_index("ix_deliveries_notices", "deliveries")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("buttons")
        batch.drop_column("text")
        batch.drop_column("priority")
        batch.alter_column("broadcast_id", existing_type=sa.Integer, nullable=False)
