"""Deduplication of delivered events: a unique key per (channel, event), first one wins.

Webhooks are retried when an answer is late or lost, so the same update can arrive twice.
The key is recorded before the event is handled: a crash mid-way loses that one message
instead of answering it twice, which is the better failure for a chat.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.schema import processed_events

KEY_CHARS = 128
KEEP = timedelta(days=7)  # webhook retries and replays come within minutes, not weeks


def _key(key: str) -> str:
    if len(key) <= KEY_CHARS:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


async def first_time(db: Database, channel: str, key: str) -> bool:
    """Record the event; False when it was recorded before (a duplicate delivery)."""
    try:
        async with db.write() as conn:
            await conn.execute(
                insert(processed_events).values(
                    channel=channel, event_key=_key(key), seen_at=db.clock.utcnow()
                )
            )
    except IntegrityError:
        return False
    return True


async def prune(db: Database, keep: timedelta = KEEP) -> int:
    """Forget events older than `keep`; returns how many rows went."""
    async with db.write() as conn:
        result = await conn.execute(
            delete(processed_events).where(processed_events.c.seen_at < db.clock.utcnow() - keep)
        )
    return result.rowcount or 0
