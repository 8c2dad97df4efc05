"""The tables. Migrations in bot/migrations create them; queries are written against these."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
    true,
)

metadata = MetaData()

# Administrative units of every era. An old code never identifies a unit without its era.
areas = Table(
    "areas",
    metadata,
    Column("era", String(8), primary_key=True),  # "2025": today's two levels; "2024": before
    Column("level", String(16), primary_key=True),  # province | district | commune
    Column("code", String(8), primary_key=True),
    Column("kind", String(16), nullable=False),  # xa, phuong, dac_khu, thi_tran, huyen, …
    Column("name", String(200), nullable=False),
    Column("parent_code", String(8)),  # province of a district or current commune, district …
    Column("province_code", String(8), nullable=False),
)

# Old unit → the current unit(s) it went into on 1 July 2025.
area_successions = Table(
    "area_successions",
    metadata,
    Column("old_era", String(8), primary_key=True),
    Column("old_code", String(8), primary_key=True),
    Column("new_code", String(8), primary_key=True),
)

criteria_sets = Table(
    "criteria_sets",
    metadata,
    Column("id", String(32), primary_key=True),  # "2021-2025"
    Column("name", JSON, nullable=False),  # {"vi": …, "en": …}
    Column("legal_basis", JSON, nullable=False),
    Column("in_force_from", Date, nullable=False),
    Column("in_force_until", Date),
    Column("indicator_count", Integer),
    Column("titles", JSON, nullable=False),  # [{"id": …, "name": {…}}], lowest first
    Column("source", Text, nullable=False),
)

criteria = Table(
    "criteria",
    metadata,
    Column("set_id", ForeignKey("criteria_sets.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("group_id", String(8)),
    Column("name", JSON, nullable=False),
    Column("keywords", JSON, nullable=False),  # folded phrases a villager may type
)

indicators = Table(
    "indicators",
    metadata,
    Column("set_id", String(32), primary_key=True),
    Column("code", String(16), primary_key=True),  # "3.1"
    Column("criterion_number", Integer, nullable=False),
    Column("name", JSON, nullable=False),
    # Thresholds may differ by region or commune group: {"default": {…}, "nhom_3": {…}}.
    Column("thresholds", JSON),
    Column("source", Text, nullable=False),
)

# One row per status import: who loaded what file, when.
status_imports = Table(
    "status_imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("file_name", String(300), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("imported_by", String(200), nullable=False),
    Column("imported_at", DateTime(timezone=True), nullable=False),
    Column("is_sample", Boolean, nullable=False, default=False),
)

# Status history: every assessment is a new row; the latest per key is the current status.
status_records = Table(
    "status_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commune_code", String(8), nullable=False),
    Column("set_id", String(32), nullable=False),
    Column("criterion_number", Integer, nullable=False),
    Column("indicator_code", String(16), nullable=False, default=""),  # "" = the criterion
    Column("met", Boolean, nullable=False),
    Column("value", String(200)),  # the figure where known, as published ("85%")
    Column("assessed_on", Date, nullable=False),
    Column("published_by", String(200), nullable=False),
    Column("source", String(300), nullable=False),
    Column("import_id", ForeignKey("status_imports.id"), nullable=False),
    Index("ix_status_current", "set_id", "commune_code", "criterion_number", "indicator_code"),
)

title_records = Table(
    "title_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commune_code", String(8), nullable=False),
    Column("set_id", String(32), nullable=False),
    Column("title", String(32), nullable=False),
    Column("decided_on", Date, nullable=False),
    Column("published_by", String(200), nullable=False),
    Column("source", String(300), nullable=False),
    Column("import_id", ForeignKey("status_imports.id"), nullable=False),
    Index("ix_title_current", "set_id", "commune_code"),
)

# A villager or official on one channel, with the conversation state so a restart resumes it.
users = Table(
    "users",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("locale", String(8), nullable=False),
    Column("commune_code", String(8)),
    Column("state", String(64)),
    Column("state_data", JSON, nullable=False, default=dict),
    # The buttons last offered ([id, label] each), so a typed number or label can press one.
    Column("offered", JSON, nullable=False, default=list),
    Column("last_seen_at", DateTime(timezone=True)),  # Zalo OA may answer only for a while
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Who may do what where: "telegram:123456789" is a commune_official of area 02020.
officials = Table(
    "officials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(96), nullable=False),
    Column("role", String(32), nullable=False),
    Column("area_code", String(8), nullable=False),
    Column("granted_by", String(200), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("principal", "role", "area_code", name="uq_officials_grant"),
)

# Which version of each shipped content file is loaded, so start-up reloads only what changed.
content_versions = Table(
    "content_versions",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

# --- dân làm: campaigns and contributions ---------------------------------------------------

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("commune_code", String(8), nullable=False),
    Column("villages", JSON, nullable=False, default=list),  # empty: the whole commune
    Column("kinds", JSON, nullable=False),  # ["workdays", "land", "money", "materials"]
    Column("targets", JSON, nullable=False, default=dict),  # kind → base units
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date),
    Column("status", String(16), nullable=False),  # open | closed
    Column("created_by", String(96), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("source", String(200), nullable=False),  # "chat" or the content file it came from
    Column("is_sample", Boolean, nullable=False, default=False),
    Index("ix_campaigns_commune", "commune_code", "status"),
)

contributions = Table(
    "contributions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("commune_code", String(8), nullable=False),
    Column("village", String(100)),
    Column("channel", String(16), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("display_name", String(100)),  # shown publicly only when show_name
    Column("show_name", Boolean, nullable=False),
    Column("kind", String(16), nullable=False),
    # Base units: đồng, m², half-workdays, or a count of the material's unit.
    Column("amount", BigInteger, nullable=False),
    Column("unit", String(32)),
    Column("description", String(200)),
    Column("due_on", Date),  # a pledge for a later date
    Column("status", String(16), nullable=False),
    Column("reason", Text),  # why it was rejected
    # The draft the villager confirmed: a replayed confirmation hits this constraint.
    Column("source_key", String(120), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "user_id", "source_key", name="uq_contributions_source"),
    Index("ix_contributions_campaign", "campaign_id", "status"),
    Index("ix_contributions_commune", "commune_code", "status"),
    Index("ix_contributions_user", "channel", "user_id"),
)

# Every official action: who, what, when, before and after.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("actor", String(96), nullable=False),
    Column("action", String(48), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_id", String(32), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Column("at", DateTime(timezone=True), nullable=False),
)

# --- channels: webhooks and Zalo Official Account ---------------------------------------------

# Events already handled, so a redelivered update (webhook retry, replayed poll) runs once.
processed_events = Table(
    "processed_events",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("event_key", String(128), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_processed_events_seen", "seen_at"),
)

# The OA's tokens. A refresh token works once, so the new pair is written before it is used.
oa_tokens = Table(
    "oa_tokens",
    metadata,
    Column("app_id", String(32), primary_key=True),
    Column("access_token", Text, nullable=False),
    Column("refresh_token", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    # sha256 of the configured first refresh token: a new one in the settings wins.
    Column("seed", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# --- dân biết: subscriptions, news, broadcasts and their deliveries -------------------------

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("commune_code", String(8)),  # copied from the profile when it changes
    Column("active", Boolean, nullable=False),  # False after "dừng" or a block
    Column("commune_news", Boolean, nullable=False),
    Column("province_news", Boolean, nullable=False),
    Column("campaign_news", Boolean, nullable=False),
    Column("pledge_reminders", Boolean, nullable=False),
    Column("polls", Boolean, nullable=False, server_default=true()),  # dân bàn: polls, results
    Column("projects", Boolean, nullable=False, server_default=true()),  # công trình: progress
    Column("digest", String(8), nullable=False),  # daily | weekly | off
    Column("locale", String(8), nullable=False),
    Column("blocked_at", DateTime(timezone=True)),
    Column("last_digest_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_subscriptions_commune", "active", "commune_code"),
)

news_items = Table(
    "news_items",
    metadata,
    Column("slug", String(100), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("published_on", Date, nullable=False),
    Column("scope_level", String(16), nullable=False),  # commune | province
    Column("scope_code", String(8), nullable=False),
    Column("topics", JSON, nullable=False),
    Column("body", Text, nullable=False),  # the Markdown subset
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

# One row per broadcast: an announcement, or one digest for a commune in one language.
broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # announcement | digest | poll | poll_result
    Column("title", String(300), nullable=False),
    Column("text", Text, nullable=False),  # plain text; channels render it their way
    Column("html", Text),  # the same for Telegram HTML, where the source had markup
    Column("photo", String(500)),
    Column("buttons", JSON),  # rows of [id, label]: where a channel has buttons (a poll's vote)
    Column("scope_level", String(16), nullable=False),  # commune | province
    Column("scope_code", String(8), nullable=False),
    Column("scope_village", String(100)),  # a village poll's: only its villagers of the commune
    Column("topic", String(32), nullable=False),  # which subscription flag it needs
    Column("locale", String(8)),  # a digest is for one language; an announcement for all
    Column("paid", Boolean, nullable=False),  # Telegram allow_paid_broadcast
    Column("status", String(16), nullable=False),  # scheduled | sending | done | cancelled
    Column("send_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(96), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_broadcasts_due", "status", "send_at"),
)

# The outbox: one row per message to someone who did not just write. A broadcast's recipient
# (broadcast_id set; the text is the broadcast's) or a notice (broadcast_id NULL: a contribution
# confirmed, rejected or done, a pledge reminder; its own text and buttons). Lower priority goes
# first: 0 a notice, 1 a reminder, 2 a broadcast. pending → sending → sent | failed | blocked |
# skipped | cancelled. next_try_at: when a pending row may be tried again (backoff); for a
# notice being sent, when its claim lapses (a killed sender's notice is sent again after it).
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("broadcast_id", ForeignKey("broadcasts.id")),  # NULL: a notice
    Column("channel", String(16), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("message_id", String(64)),
    Column("next_try_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("priority", Integer, nullable=False, default=2, server_default="2"),
    Column("text", Text),  # a notice's
    Column("buttons", JSON),  # a notice's: rows of [id, label]
    UniqueConstraint("broadcast_id", "channel", "user_id", name="uq_deliveries_recipient"),
    Index("ix_deliveries_work", "broadcast_id", "state", "id"),
    # Notices only, so a broadcast's hundred thousand rows cost this index nothing.
    Index(
        "ix_deliveries_notices",
        "state",
        "priority",
        "id",
        sqlite_where=text("broadcast_id IS NULL"),
        postgresql_where=text("broadcast_id IS NULL"),
    ),
)

# --- several workers, one rate limit (issue 12, bot/delivery/limiter.py) -----------------------
# One row per channel and pace (free, paid; and per group chat, 20 a minute): the time, in
# wall-clock seconds, at which the next message of any worker conforms (GCRA). A worker reserves
# a few slots at a time by moving it.
send_pace = Table(
    "send_pace",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("tat", Float, nullable=False),
)

# When each recurring job runs next, so a restart loses none.
schedules = Table(
    "schedules",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("next_run_at", DateTime(timezone=True), nullable=False),
    Column("last_run_at", DateTime(timezone=True)),
)

# --- dân bàn: polls ---------------------------------------------------------------------------

# A question an official asks the people of a commune, or of one village of it.
polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commune_code", String(8), nullable=False),
    Column("village", String(100)),  # NULL: the whole commune
    Column("question", String(500), nullable=False),
    Column("results", String(16), nullable=False),  # after_vote | after_close
    Column("closes_at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),  # open | closed
    Column("created_by", String(96), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    # The official's draft: a replayed confirmation creates nothing twice.
    Column("source_key", String(120), nullable=False, unique=True),
    Index("ix_polls_commune", "commune_code", "status"),
    Index("ix_polls_closed", "closed_at"),
    # --- dân bàn for the whole province (0014) ---
    # commune | village | province; a province poll's commune_code is the province's code.
    Column("scope_level", String(16), nullable=False, server_default="commune"),
    Column("province_code", String(8)),  # the province the poll belongs to (NULL: unknown)
    Index("ix_polls_province", "province_code", "scope_level"),
)

poll_options = Table(
    "poll_options",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("poll_id", ForeignKey("polls.id"), nullable=False),
    Column("position", Integer, nullable=False),  # 0, 1, … as the official typed them
    Column("text", String(200), nullable=False),
    # dân bàn, several questions (0009): the position of the option's question.
    Column("question", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("poll_id", "position", name="uq_poll_options_position"),
)

# --- dân bàn: several questions, one ballot per person (0009) --------------------------------

# A poll's questions, in order: one answer ("one"), several ("many"), or typed words ("text").
# A poll of before 0009 has one, of kind "one", with the poll's question.
poll_questions = Table(
    "poll_questions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("poll_id", ForeignKey("polls.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("text", String(500), nullable=False),
    Column("kind", String(8), nullable=False),  # one | many | text
    UniqueConstraint("poll_id", "position", name="uq_poll_questions_position"),
)

# One ballot per person and poll, answered anew until the poll closes.
poll_ballots = Table(
    "poll_ballots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("poll_id", ForeignKey("polls.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("village", String(100)),  # the voter's, where known: the breakdown by village
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("poll_id", "channel", "user_id", name="uq_poll_ballots_voter"),
    Index("ix_poll_ballots_village", "poll_id", "village"),
)

# The options a ballot chose (one per question of kind "one", any of "many"); the village is
# the ballot's, so the results are counted from the index alone.
poll_choices = Table(
    "poll_choices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ballot_id", ForeignKey("poll_ballots.id"), nullable=False),
    Column("poll_id", ForeignKey("polls.id"), nullable=False),
    Column("option_id", ForeignKey("poll_options.id"), nullable=False),
    Column("village", String(100)),
    UniqueConstraint("ballot_id", "option_id", name="uq_poll_choices_option"),
    Index("ix_poll_choices_count", "poll_id", "village", "option_id"),
)

# A ballot's answer to a poll's free-text question: read by the officials of the poll's scope,
# never shown in results, digests or anything villagers see.
poll_texts = Table(
    "poll_texts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ballot_id", ForeignKey("poll_ballots.id"), nullable=False),
    Column("poll_id", ForeignKey("polls.id"), nullable=False),
    Column("question", Integer, nullable=False),  # the question's position
    Column("text", Text, nullable=False),
    UniqueConstraint("ballot_id", "question", name="uq_poll_texts_answer"),
    Index("ix_poll_texts_poll", "poll_id", "id"),
)

# --- dân kiểm tra: citizen reports ------------------------------------------------------------

# A problem a villager reports, and its way through the commune's hands: new → received →
# in progress → resolved, or closed as out of scope, duplicate or declined (with an answer).
reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commune_code", String(8), nullable=False),
    Column("village", String(100)),
    Column("category", String(16), nullable=False),
    Column("description", Text, nullable=False),
    Column("photo", String(256)),  # the photo's id on the reporter's channel
    Column("latitude", Float),
    Column("longitude", Float),
    Column("channel", String(16), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("display_name", String(128)),  # seen by the commune's officials only
    Column("state", String(16), nullable=False),
    Column("answer", Text),  # the official's latest written answer
    Column("evidence_photo", String(256)),  # a photo of the work done
    Column("duplicate_of", ForeignKey("reports.id")),
    Column("rating", String(8)),  # good | bad, after closing
    Column("reopened", Integer, nullable=False, default=0, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("closed_at", DateTime(timezone=True)),
    # The reporter's draft: a replayed confirmation records nothing twice.
    Column("source_key", String(64), nullable=False),
    # The report desk (0010): a disputed criterion ("tôi thấy tiêu chí này chưa đạt").
    Column("criteria_set", String(32)),
    Column("criterion", Integer),
    UniqueConstraint("channel", "user_id", "source_key", name="uq_reports_source"),
    Index("ix_reports_queue", "commune_code", "state", "created_at"),
    Index("ix_reports_reporter", "channel", "user_id"),
    Index("ix_reports_similar", "commune_code", "category", "id"),  # near-duplicates (0015)
)

# --- the report desk (0010): followers of a report ------------------------------------------

# Villagers who said "Đúng việc này" to a near-duplicate: told of the report's changes too.
report_followers = Table(
    "report_followers",
    metadata,
    Column("report_id", ForeignKey("reports.id"), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# --- dân hưởng lợi: projects (công trình) the gifts build -------------------------------------

# A work the commune builds (a road, a cultural house), funded by campaigns and other sources:
# preparing → building → done → handed_over, with its progress in percent.
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("commune_code", String(8), nullable=False),
    Column("village", String(100)),  # NULL: the whole commune
    Column("campaigns", JSON, nullable=False),  # slugs of the campaigns that fund it
    Column("budget", JSON, nullable=False),  # source (state | people | enterprises) → đồng
    Column("starts_on", Date),
    Column("ends_on", Date),  # expected
    Column("status", String(16), nullable=False),
    Column("progress", Integer, nullable=False),  # 0–100
    Column("created_by", String(96), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("source", String(200), nullable=False),  # "chat" or the content file it came from
    Column("is_sample", Boolean, nullable=False, default=False),
    Index("ix_projects_commune", "commune_code", "status"),
)

# Progress over time: each update's status, progress, note and photo, newest last.
project_updates = Table(
    "project_updates",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", ForeignKey("projects.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("progress", Integer, nullable=False),
    Column("note", Text, nullable=False),
    Column("photo", String(256)),  # the photo's id on the channel it came from
    Column("photo_channel", String(16)),
    Column("author", String(96), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The official's draft or the file's entry: a replayed confirmation records nothing twice.
    Column("source_key", String(120), nullable=False, unique=True),
    Index("ix_project_updates_project", "project_id", "id"),
    Index("ix_project_updates_created", "created_at"),
)

# --- several workers: one user's updates in order, caches kept in step (issue 12) ------------

# A webhook's update, recorded before it is answered: the insert is the dedupe of a replay, and
# the worker holding the user's turn answers their pending rows in `seq` order (Telegram's
# update_id; 0 where a platform gives none, then arrival order). `taken_at` is set, and the body
# dropped, as a row is taken; rows are kept a week for the dedupe (bot/core/inbox.py).
inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),
    Column("event_key", String(128), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("body", JSON),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("taken_at", DateTime(timezone=True)),
    # Event first: a take asks by channel and user, and must find ix_inbox_user (see 0016).
    UniqueConstraint("event_key", "channel", name="uq_inbox_event"),
    Index("ix_inbox_user", "channel", "user_id", "taken_at"),
    Index("ix_inbox_received", "received_at"),
)

# Whose turn it is to answer a user: one worker (`holder`) until `lease_until`, renewed with
# every update it takes; a crashed worker's turn lapses and another takes the user's updates.
# Given back, the lease is NULL and the holder kept: who answered the user last.
inbox_turns = Table(
    "inbox_turns",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("holder", String(32)),
    Column("lease_until", DateTime(timezone=True)),
)

# A counter per cached area (statuses, campaigns, tallies, grants), bumped in the transaction of
# every change; each process compares it at most every second and drops what it kept.
cache_versions = Table(
    "cache_versions",
    metadata,
    Column("area", String(16), primary_key=True),
    Column("version", BigInteger, nullable=False),
)
