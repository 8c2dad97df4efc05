"""User profiles and conversation state, keyed by (channel, user id)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database, as_utc
from bot.storage.schema import users


@dataclass
class UserProfile:
    channel: str
    user_id: str
    locale: str
    commune_code: str | None = None
    state: str | None = None  # the conversation step, e.g. "onboarding:commune"
    state_data: dict[str, Any] = field(default_factory=dict)
    # The buttons last offered, [id, label] each, so a typed number or label can press one.
    offered: list[list[str]] = field(default_factory=list)
    last_seen_at: datetime | None = None  # to the hour; see schema.users.last_seen_at
    is_new: bool = False

    def enter(self, state: str, **data: Any) -> None:
        self.state, self.state_data = state, data

    def seen(self, now: datetime) -> None:
        """Note that the user wrote; kept to the hour, so it costs a write once an hour."""
        if self.last_seen_at is None or now - self.last_seen_at >= timedelta(hours=1):
            self.last_seen_at = now

    def leave(self) -> None:
        self.state, self.state_data = None, {}

    def snapshot(self) -> UserProfile:
        """A copy to change freely. Deep: handlers change nested step data (a draft) in place."""
        return UserProfile(
            self.channel,
            self.user_id,
            self.locale,
            self.commune_code,
            self.state,
            _copy_json(self.state_data),
            [list(pair) for pair in self.offered],
            self.last_seen_at,
            self.is_new,
        )


def _copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (what state_data is stored as), cheaper than deepcopy."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value  # str, numbers, bool, None: immutable


_FIELDS = ("locale", "commune_code", "state", "state_data", "offered", "last_seen_at")
# Built once: a statement reused with new parameters skips SQLAlchemy's per-call work.
_UPDATE = (
    update(users)
    .where(users.c.channel == bindparam("key_channel"), users.c.user_id == bindparam("key_user"))
    .values({f: bindparam(f) for f in (*_FIELDS, "updated_at")})
)


def _update_params(profile: UserProfile, values: dict[str, Any]) -> dict[str, Any]:
    return values | {"key_channel": profile.channel, "key_user": profile.user_id}


class UserStore:
    """Reads profiles through a small in-memory cache; every change is written at once.

    The cache is safe because the dispatcher handles one update per user at a time, and with
    several workers (bot/core/inbox.py) a worker taking a turn another had last forgets what it
    kept of that user.
    """

    def __init__(self, db: Database, max_cached: int = 50_000) -> None:
        self._db = db
        self._cache: dict[tuple[str, str], UserProfile] = {}
        self._max = max_cached
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def load(self, channel: str, user_id: str, default_locale: str) -> UserProfile:
        cached = self._cache.get((channel, user_id))
        if cached is not None:
            return cached.snapshot()
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(users).where(users.c.channel == channel, users.c.user_id == user_id)
                )
            ).first()
        if row is None:
            return UserProfile(channel, user_id, default_locale, is_new=True)
        profile = UserProfile(
            channel,
            user_id,
            row.locale,
            row.commune_code,
            row.state,
            dict(row.state_data or {}),
            [[o, ""] if isinstance(o, str) else list(o) for o in row.offered or []],
            as_utc(row.last_seen_at) if row.last_seen_at else None,
        )
        self._remember(profile)
        return profile.snapshot()

    async def save(self, before: UserProfile, after: UserProfile) -> None:
        """Write the profile if anything changed since `before`; returns once it is stored."""
        if not after.is_new and all(getattr(before, f) == getattr(after, f) for f in _FIELDS):
            return
        now = self._db.clock.utcnow()
        values = {f: getattr(after, f) for f in _FIELDS} | {"updated_at": now}
        if after.is_new:
            await self._insert(after, values, now)
        else:
            await self._group_update(after, values)
        after.is_new = False
        self._remember(after.snapshot())

    async def _insert(self, profile: UserProfile, values: dict[str, Any], now: datetime) -> None:
        async with self._db.write() as conn:
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        users.insert().values(
                            channel=profile.channel,
                            user_id=profile.user_id,
                            created_at=now,
                            **values,
                        )
                    )
            except IntegrityError:
                # Another process created the row first; ours is the newer state.
                await conn.execute(_UPDATE, [_update_params(profile, values)])

    async def _group_update(self, profile: UserProfile, values: dict[str, Any]) -> None:
        """Group commit: saves that arrive while a write is under way share the next one, so
        many users chatting at once cost one transaction instead of one each."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((_update_params(profile, values), done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_pending())
        await done

    async def _write_pending(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._db.write() as conn:
                    await conn.execute(_UPDATE, [params for params, _ in batch])
            except Exception as error:  # each waiting update fails with it, and says so
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)

    async def close(self) -> None:
        """Let a write under way finish."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    def _remember(self, profile: UserProfile) -> None:
        if len(self._cache) >= self._max:
            self._cache.pop(next(iter(self._cache)))
        self._cache[(profile.channel, profile.user_id)] = profile

    def forget(self) -> None:
        self._cache.clear()

    def forget_one(self, channel: str, user_id: str) -> None:
        """Read the profile again next time: another worker may have answered the user."""
        self._cache.pop((channel, user_id), None)
