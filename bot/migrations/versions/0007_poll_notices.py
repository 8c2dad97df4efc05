"""Dân bàn announced: a "polls" topic (on, as every topic is); broadcasts with buttons, a village.

The topic is on for everyone already subscribed, as every topic is on for a new subscriber.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("polls", sa.Boolean, nullable=False, server_default=sa.true()))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("buttons", sa.JSON))
        batch.add_column(sa.Column("scope_village", sa.String(100)))
    op.create_index("ix_polls_closed", "polls", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_polls_closed", "polls")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("scope_village")
        batch.drop_column("buttons")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("polls")
