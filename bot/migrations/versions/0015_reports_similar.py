"""The near-duplicate check's index: a commune's reports of a category, the newest first.

Before every confirmation the check reads the newest fifty open reports of the commune and
category. Through ix_reports_queue it read every open report of the commune and sorted them;
with this one it walks the category's newest and stops at fifty.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_reports_similar", "reports", ["commune_code", "category", "id"])


def downgrade() -> None:
    op.drop_index("ix_reports_similar", table_name="reports")
