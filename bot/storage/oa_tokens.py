"""Zalo OA access and refresh tokens, kept in the database.

A refresh token works once: the pair Zalo returns is written in one transaction before the
access token is used, so a crash right after a refresh never leaves us holding a spent token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from bot.storage.db import Database, insert_or
from bot.storage.schema import oa_tokens


@dataclass(frozen=True)
class OaTokens:
    access_token: str  # "" before the first refresh
    refresh_token: str
    expires_at: datetime


def seed_digest(refresh_token: str) -> str:
    """What identifies the configured first refresh token without storing it twice."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def load(db: Database, app_id: str, configured_refresh_token: str) -> OaTokens:
    """The stored tokens, unless the settings carry a refresh token not seen before."""
    async with db.read() as conn:
        row = (await conn.execute(select(oa_tokens).where(oa_tokens.c.app_id == app_id))).first()
    if row is None or row.seed != seed_digest(configured_refresh_token):
        # First start, or the operator re-authorised the app and set a new refresh token.
        return OaTokens("", configured_refresh_token, datetime.min.replace(tzinfo=UTC))
    return OaTokens(row.access_token, row.refresh_token, _aware(row.expires_at))


async def save(db: Database, app_id: str, configured_refresh_token: str, tokens: OaTokens) -> None:
    """Write the new pair atomically (insert or replace)."""
    values = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at,
        "seed": seed_digest(configured_refresh_token),
        "updated_at": db.clock.utcnow(),
    }
    async with db.write() as conn:
        upsert = insert_or(conn, oa_tokens).values(app_id=app_id, **values)
        await conn.execute(
            upsert.on_conflict_do_update(index_elements=[oa_tokens.c.app_id], set_=values)
        )
