"""Who receives what: one subscription per (channel, user), kept beside the profile."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.schema import subscriptions

TOPICS = (
    "commune_news",
    "province_news",
    "campaign_news",
    "pledge_reminders",
    "polls",
    "projects",
)
DIGESTS = ("daily", "weekly", "off")


@dataclass(frozen=True)
class Subscription:
    active: bool
    topics: dict[str, bool]
    digest: str


class SubscriptionStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, channel: str, user_id: str) -> Subscription | None:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(subscriptions).where(
                        subscriptions.c.channel == channel, subscriptions.c.user_id == user_id
                    )
                )
            ).first()
        if row is None:
            return None
        return Subscription(row.active, {t: getattr(row, t) for t in TOPICS}, row.digest)

    async def subscribe(
        self, channel: str, user_id: str, commune_code: str | None, locale: str
    ) -> bool:
        """Subscribe with the defaults (everything, weekly digest); False if already there."""
        now = self._db.clock.utcnow()
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    insert(subscriptions).values(
                        channel=channel,
                        user_id=user_id,
                        commune_code=commune_code,
                        locale=locale,
                        active=True,
                        digest="weekly",
                        updated_at=now,
                        **dict.fromkeys(TOPICS, True),
                    )
                )
        except IntegrityError:
            await self.follow(channel, user_id, commune_code, locale)
            return False
        return True

    async def follow(
        self, channel: str, user_id: str, commune_code: str | None, locale: str
    ) -> None:
        """Keep the subscription's commune and language those of the profile."""
        await self._set(channel, user_id, commune_code=commune_code, locale=locale)

    async def stop(self, channel: str, user_id: str) -> None:
        await self._set(channel, user_id, active=False)

    async def resume(self, channel: str, user_id: str) -> None:
        await self._set(channel, user_id, active=True, blocked_at=None)

    async def choose(self, channel: str, user_id: str, /, **choices: Any) -> None:
        """Set topics (name=bool) and/or digest ("daily" | "weekly" | "off")."""
        assert set(choices) <= {*TOPICS, "digest"}, choices
        await self._set(channel, user_id, **choices)

    async def _set(self, channel: str, user_id: str, **values: Any) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(subscriptions)
                .where(subscriptions.c.channel == channel, subscriptions.c.user_id == user_id)
                .values(**values, updated_at=self._db.clock.utcnow())
            )
