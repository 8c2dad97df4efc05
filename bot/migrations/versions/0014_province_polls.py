"""Dân bàn for the whole province: a poll's scope level and the province it belongs to.

Levels: commune | village | province. Existing polls are of their commune, or of their village.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ADD COLUMN with a default: no table rebuilt on SQLite (the poll tables refer to this one).
    op.add_column(
        "polls",
        sa.Column("scope_level", sa.String(16), nullable=False, server_default="commune"),
    )
    op.add_column("polls", sa.Column("province_code", sa.String(8)))
    op.execute("UPDATE polls SET scope_level = 'village' WHERE village IS NOT NULL")
    op.execute(
        "UPDATE polls SET province_code = (SELECT areas.province_code FROM areas"
        " WHERE areas.era = '2025' AND areas.level = 'commune'"
        " AND areas.code = polls.commune_code)"
    )
    op.create_index("ix_polls_province", "polls", ["province_code", "scope_level"])


def downgrade() -> None:
    op.drop_index("ix_polls_province", table_name="polls")
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("province_code")
        batch.drop_column("scope_level")
