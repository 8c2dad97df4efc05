"""The report desk: a disputed criterion on a report, spam marks, followers of a report.

Spam is a closing state ("spam", no schema change): hidden from public figures and lists, and
counted against the sender. A report may name the criterion it disputes (criteria set and
number). Villagers who say "Đúng việc này" to a near-duplicate follow that report.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("criteria_set", sa.String(32)))
        batch.add_column(sa.Column("criterion", sa.Integer))
    op.create_table(
        "report_followers",
        sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("created_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("report_followers")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("criterion")
        batch.drop_column("criteria_set")
