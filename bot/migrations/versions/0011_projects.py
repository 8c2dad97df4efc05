"""Dân hưởng lợi: projects (công trình), their progress updates and a "projects" topic.

The topic is on for everyone already subscribed, as every topic is on for a new subscriber.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("slug", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("commune_code", sa.String(8), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("campaigns", sa.JSON, nullable=False),
        sa.Column("budget", sa.JSON, nullable=False),
        sa.Column("starts_on", sa.Date),
        sa.Column("ends_on", sa.Date),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("created_by", sa.String(96), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("is_sample", sa.Boolean, nullable=False),
    )
    op.create_index("ix_projects_commune", "projects", ["commune_code", "status"])
    op.create_table(
        "project_updates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("photo", sa.String(256)),
        sa.Column("photo_channel", sa.String(16)),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("source_key", sa.String(120), nullable=False, unique=True),
    )
    op.create_index("ix_project_updates_project", "project_updates", ["project_id", "id"])
    op.create_index("ix_project_updates_created", "project_updates", ["created_at"])
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(
            sa.Column("projects", sa.Boolean, nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("projects")
    op.drop_index("ix_project_updates_created", "project_updates")
    op.drop_index("ix_project_updates_project", "project_updates")
    op.drop_table("project_updates")
    op.drop_index("ix_projects_commune", "projects")
    op.drop_table("projects")
