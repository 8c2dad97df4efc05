"""The inbox's replay check keyed by the event first: (event_key, channel).

On PostgreSQL a worker's connection keeps a generic plan for taking a user's next update, and
one made while the inbox was still empty (a fresh database, a quiet start) could walk the
(channel, event_key) constraint, which matches on the channel alone: every row of the channel
read for each update, slower as the week's rows pile up (1.2 ms at 3,600 rows). Keyed by the
event first, the constraint matches nothing the take asks, and ix_inbox_user serves it
whatever the planner knew of the table. Uniqueness is the same.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_constraint("uq_inbox_event", type_="unique")
        batch.create_unique_constraint("uq_inbox_event", ["event_key", "channel"])


def downgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.drop_constraint("uq_inbox_event", type_="unique")
        batch.create_unique_constraint("uq_inbox_event", ["channel", "event_key"])
