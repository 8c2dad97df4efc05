"""Dân kiểm tra: citizen reports with a tracked state.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("photo", sa.String(256)),
        sa.Column("latitude", sa.Float),
        sa.Column("longitude", sa.Float),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(128)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("evidence_photo", sa.String(256)),
        sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("reports.id")),
        sa.Column("rating", sa.String(8)),
        sa.Column("reopened", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("closed_at", TZ),
        sa.Column("source_key", sa.String(64), nullable=False),
        sa.UniqueConstraint("channel", "user_id", "source_key", name="uq_reports_source"),
    )
    op.create_index("ix_reports_queue", "reports", ["commune_code", "state", "created_at"])
    op.create_index("ix_reports_reporter", "reports", ["channel", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_reports_reporter", "reports")
    op.drop_index("ix_reports_queue", "reports")
    op.drop_table("reports")
