"""Foundation: areas, criteria, status history, users, officials.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("era", sa.String(8), primary_key=True),
        sa.Column("level", sa.String(16), primary_key=True),
        sa.Column("code", sa.String(8), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("parent_code", sa.String(8)),
        sa.Column("province_code", sa.String(8), nullable=False),
    )
    op.create_table(
        "area_successions",
        sa.Column("old_era", sa.String(8), primary_key=True),
        sa.Column("old_code", sa.String(8), primary_key=True),
        sa.Column("new_code", sa.String(8), primary_key=True),
    )
    op.create_table(
        "criteria_sets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.JSON, nullable=False),
        sa.Column("legal_basis", sa.JSON, nullable=False),
        sa.Column("in_force_from", sa.Date, nullable=False),
        sa.Column("in_force_until", sa.Date),
        sa.Column("indicator_count", sa.Integer),
        sa.Column("titles", sa.JSON, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_table(
        "criteria",
        sa.Column("set_id", sa.String(32), sa.ForeignKey("criteria_sets.id"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("group_id", sa.String(8)),
        sa.Column("name", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=False),
    )
    op.create_table(
        "indicators",
        sa.Column("set_id", sa.String(32), primary_key=True),
        sa.Column("code", sa.String(16), primary_key=True),
        sa.Column("criterion_number", sa.Integer, nullable=False),
        sa.Column("name", sa.JSON, nullable=False),
        sa.Column("thresholds", sa.JSON),
        sa.Column("source", sa.Text, nullable=False),
    )
    op.create_table(
        "status_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("file_name", sa.String(300), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("imported_by", sa.String(200), nullable=False),
        sa.Column("imported_at", TZ, nullable=False),
        sa.Column("is_sample", sa.Boolean, nullable=False),
    )
    op.create_table(
        "status_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("set_id", sa.String(32), nullable=False),
        sa.Column("criterion_number", sa.Integer, nullable=False),
        sa.Column("indicator_code", sa.String(16), nullable=False),
        sa.Column("met", sa.Boolean, nullable=False),
        sa.Column("value", sa.String(200)),
        sa.Column("assessed_on", sa.Date, nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("status_imports.id"), nullable=False),
    )
    op.create_index(
        "ix_status_current",
        "status_records",
        ["set_id", "commune_code", "criterion_number", "indicator_code"],
    )
    op.create_table(
        "title_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("set_id", sa.String(32), nullable=False),
        sa.Column("title", sa.String(32), nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False),
        sa.Column("published_by", sa.String(200), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("status_imports.id"), nullable=False),
    )
    op.create_index("ix_title_current", "title_records", ["set_id", "commune_code"])
    op.create_table(
        "users",
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("user_id", sa.String(64), primary_key=True),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("commune_code", sa.String(8)),
        sa.Column("state", sa.String(64)),
        sa.Column("state_data", sa.JSON, nullable=False),
        sa.Column("offered", sa.JSON, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "officials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(96), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("area_code", sa.String(8), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.Column("granted_at", TZ, nullable=False),
        sa.UniqueConstraint("principal", "role", "area_code", name="uq_officials_grant"),
    )
    op.create_table(
        "content_versions",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("loaded_at", TZ, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "content_versions",
        "officials",
        "users",
        "title_records",
        "status_records",
        "status_imports",
        "indicators",
        "criteria",
        "criteria_sets",
        "area_successions",
        "areas",
    ):
        op.drop_table(table)
