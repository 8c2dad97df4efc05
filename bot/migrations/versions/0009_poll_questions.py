"""Dân bàn with several questions: questions, one ballot per person, its choices and words.

Each existing poll becomes one question (of one answer) and each vote a ballot with its one
choice; `poll_votes` goes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "poll_questions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.UniqueConstraint("poll_id", "position", name="uq_poll_questions_position"),
    )
    # ADD COLUMN with a default: no table rebuilt on SQLite (poll_votes refers to this one).
    op.add_column(
        "poll_options",
        sa.Column("question", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "poll_ballots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("poll_id", "channel", "user_id", name="uq_poll_ballots_voter"),
    )
    op.create_index("ix_poll_ballots_village", "poll_ballots", ["poll_id", "village"])
    op.create_table(
        "poll_choices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ballot_id", sa.Integer, sa.ForeignKey("poll_ballots.id"), nullable=False),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("option_id", sa.Integer, sa.ForeignKey("poll_options.id"), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.UniqueConstraint("ballot_id", "option_id", name="uq_poll_choices_option"),
    )
    op.create_index("ix_poll_choices_count", "poll_choices", ["poll_id", "village", "option_id"])
    op.create_table(
        "poll_texts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ballot_id", sa.Integer, sa.ForeignKey("poll_ballots.id"), nullable=False),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("question", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.UniqueConstraint("ballot_id", "question", name="uq_poll_texts_answer"),
    )
    op.create_index("ix_poll_texts_poll", "poll_texts", ["poll_id", "id"])
    op.execute(
        "INSERT INTO poll_questions (poll_id, position, text, kind) "
        "SELECT id, 0, question, 'one' FROM polls"
    )
    op.execute(
        "INSERT INTO poll_ballots (poll_id, channel, user_id, village, created_at, updated_at) "
        "SELECT poll_id, channel, user_id, village, created_at, updated_at FROM poll_votes"
    )
    op.execute(
        "INSERT INTO poll_choices (ballot_id, poll_id, option_id, village) "
        "SELECT b.id, v.poll_id, v.option_id, v.village FROM poll_votes v JOIN poll_ballots b "
        "ON b.poll_id = v.poll_id AND b.channel = v.channel AND b.user_id = v.user_id"
    )
    op.drop_table("poll_votes")


def downgrade() -> None:
    # A ballot's first choice becomes its vote: the choices of later questions are lost.
    op.create_table(
        "poll_votes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id"), nullable=False),
        sa.Column("option_id", sa.Integer, sa.ForeignKey("poll_options.id"), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("village", sa.String(100)),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.UniqueConstraint("poll_id", "channel", "user_id", name="uq_poll_votes_voter"),
    )
    op.execute(
        "INSERT INTO poll_votes (poll_id, option_id, channel, user_id, village, created_at, "
        "updated_at) SELECT b.poll_id, (SELECT min(c.option_id) FROM poll_choices c "
        "WHERE c.ballot_id = b.id), b.channel, b.user_id, b.village, b.created_at, b.updated_at "
        "FROM poll_ballots b WHERE EXISTS (SELECT 1 FROM poll_choices c WHERE c.ballot_id = b.id)"
    )
    op.drop_table("poll_texts")
    op.drop_table("poll_choices")
    op.drop_table("poll_ballots")
    # Native on PostgreSQL and SQLite ≥ 3.35; a rebuilt table would break poll_votes' reference.
    op.execute("ALTER TABLE poll_options DROP COLUMN question")
    op.drop_table("poll_questions")
