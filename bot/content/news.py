"""News items as files in content/news/: TOML front matter between +++ lines, then a body in
the Markdown subset of bot/domain/markup.py.

    +++
    title = "Khởi công đường thôn Nà Làng"
    date = 2026-11-20
    scope = "commune:02020"        # or "province:19"
    topics = ["commune_news"]
    +++
    Sáng 20/11, **UBND xã Chợ Đồn** …
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import delete, insert, select

from bot.domain.paths import CONTENT_DIR
from bot.storage.db import Database
from bot.storage.schema import news_items

log = logging.getLogger(__name__)
NEWS_DIR = CONTENT_DIR / "news"
TOPICS = ("commune_news", "province_news", "campaign_news")


class NewsFileError(ValueError):
    pass


@dataclass(frozen=True)
class NewsItem:
    slug: str
    title: str
    published_on: date
    scope_level: str
    scope_code: str
    topics: tuple[str, ...]
    body: str


def read_news(path: Path) -> NewsItem:
    """One news file, checked; raises NewsFileError naming the problem."""
    text = path.read_text(encoding="utf-8")
    parts = text.split("+++")
    if len(parts) < 3 or parts[0].strip():
        raise NewsFileError(f"{path.name}: the file must start with a +++ front matter block")
    try:
        meta = tomllib.loads(parts[1])
    except tomllib.TOMLDecodeError as error:
        raise NewsFileError(f"{path.name}: {error}") from None
    body = "+++".join(parts[2:]).strip()
    level, _, code = str(meta.get("scope", "")).partition(":")
    if level not in ("commune", "province") or not code:
        raise NewsFileError(f"{path.name}: scope is 'commune:CODE' or 'province:CODE'")
    topics = tuple(meta.get("topics", ["commune_news" if level == "commune" else "province_news"]))
    if any(t not in TOPICS for t in topics):
        raise NewsFileError(f"{path.name}: topics must be among {', '.join(TOPICS)}")
    if not isinstance(meta.get("date"), date) or not meta.get("title") or not body:
        raise NewsFileError(f"{path.name}: a title, a date (2026-11-20) and a body are needed")
    return NewsItem(path.stem, str(meta["title"]), meta["date"], level, code, topics, body)


async def load_news(db: Database, folder: Path = NEWS_DIR) -> int:
    """Put every news file into the database (replacing one with the same slug)."""
    items = []
    for path in sorted(folder.glob("*.md")):
        if path.name == "README.md":
            continue
        try:
            items.append(read_news(path))
        except NewsFileError as error:
            log.error("news file skipped: %s", error)
    if not items:
        return 0
    async with db.write() as conn:
        await conn.execute(delete(news_items).where(news_items.c.slug.in_([i.slug for i in items])))
        await conn.execute(
            insert(news_items),
            [
                {
                    "slug": i.slug,
                    "title": i.title,
                    "published_on": i.published_on,
                    "scope_level": i.scope_level,
                    "scope_code": i.scope_code,
                    "topics": list(i.topics),
                    "body": i.body,
                    "loaded_at": db.clock.utcnow(),
                }
                for i in items
            ],
        )
    return len(items)


async def news_since(
    db: Database, since: date, commune_code: str, province_code: str
) -> list[NewsItem]:
    """News for a commune (its own and the province's) published on or after `since`."""
    n = news_items
    async with db.read() as conn:
        rows = await conn.execute(
            select(n)
            .where(n.c.published_on >= since)
            .where(
                ((n.c.scope_level == "commune") & (n.c.scope_code == commune_code))
                | ((n.c.scope_level == "province") & (n.c.scope_code == province_code))
            )
            .order_by(n.c.published_on.desc())
        )
        return [
            NewsItem(
                r.slug,
                r.title,
                r.published_on,
                r.scope_level,
                r.scope_code,
                tuple(r.topics),
                r.body,
            )
            for r in rows
        ]
