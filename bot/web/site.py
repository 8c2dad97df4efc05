"""The site's routes, its language, its templates and its page cache.

Vietnamese by default, English with `?lang=en`; every link a page makes keeps the language. A
page is rendered from content/templates/web/ with the chat's catalogs and Babel formats, HTML
escaped. Rendered pages are kept PAGE_TTL seconds per (page, commune, language): at most
2 × (communes + 2) entries, so the bound is the province's size, and a change shows within
PAGE_TTL seconds (statuses, campaigns and tallies have their own 30 s caches below that); while
one request re-renders an expired page, the others get the previous one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.app.runtime import Runtime
from bot.app.services import Services
from bot.content.render import build_environment
from bot.domain.clock import TZ
from bot.domain.i18n import LOCALES, _, use_locale
from bot.domain.paths import CONTENT_DIR
from bot.storage.cache import TtlCache
from bot.storage.public import PublicStore
from bot.web.photos import ProjectPhotos

PAGE_TTL = 10.0
DATA_TTL = 60.0  # the open datasets' rows: one entry per dataset
STATIC_DIR = CONTENT_DIR / "web"
CACHE_HEADER = {"Cache-Control": f"public, max-age={int(PAGE_TTL)}"}


def language(request: Request) -> str:
    lang = request.query_params.get("lang", "vi")
    return lang if lang in LOCALES else "vi"


class Site:
    """The public pages and open data of one province; the services come from the runtime."""

    def __init__(self) -> None:
        self.env: Environment = build_environment(html=True)
        self.env.filters["local"] = lambda moment: moment.astimezone(TZ)  # stored in UTC
        self.pages = TtlCache(PAGE_TTL)
        self.data = TtlCache(DATA_TTL)
        # Per cached key (so bounded as the cache is): the render under way, the last page.
        self._rendering: dict[tuple[str, ...], asyncio.Lock] = {}
        self._last: dict[tuple[str, ...], bytes] = {}
        self._public: PublicStore | None = None
        self._photos: ProjectPhotos | None = None

    def services(self, request: Request) -> Services:
        return cast(Runtime, request.state.runtime).services

    def public(self, services: Services) -> PublicStore:
        if self._public is None:
            self._public = PublicStore(services.db)
        return self._public

    def photos(self, services: Services) -> ProjectPhotos:
        """The project photos, under the settings' photo_dir, fetched by the runtime's channels."""
        if self._photos is None:
            self._photos = ProjectPhotos(Path(services.settings.photo_dir), services.files)
        return self._photos

    def render(self, request: Request, name: str, code: int = 200, **context: Any) -> Response:
        """A page in the request's language (the caller is inside `use_locale`)."""
        lang = language(request)
        other = "en" if lang == "vi" else "vi"
        html = self.env.get_template(f"web/{name}").render(
            lang=lang,
            link=lambda path, **query: link(path, lang, **query),
            other_lang=f"{request.url.path}?{urlencode({**_kept(request), 'lang': other})}",
            **context,
        )
        return HTMLResponse(html, code, headers=CACHE_HEADER if code == 200 else None)

    async def cached(
        self, request: Request, key: tuple[str, ...], make: Callable[[], Awaitable[Response]]
    ) -> Response:
        """The page from the cache, or made in the request's language and kept PAGE_TTL s (its
        bytes: each request gets a response of its own). One request re-renders an expired page
        while the others get the last one (a page is never more than one render late)."""
        full = (*key, language(request))
        body: bytes | None = self.pages.get(full)
        if body is not None:
            return HTMLResponse(body, headers=CACHE_HEADER)
        lock = self._rendering.setdefault(full, asyncio.Lock())
        if lock.locked() and full in self._last:
            return HTMLResponse(self._last[full], headers=CACHE_HEADER)
        async with lock:
            body = self.pages.get(full)
            if body is None:
                with use_locale(language(request)):
                    made = await make()
                if made.status_code != 200:
                    return made
                body = bytes(made.body)
                self.pages.put(full, body)
                self._last[full] = body
        return HTMLResponse(body, headers=CACHE_HEADER)

    def not_found(self, request: Request, message: str) -> Response:
        with use_locale(language(request)):
            return self.render(request, "not_found.html", 404, message=_(message))

    def routes(self) -> list[BaseRoute]:
        from bot.web import open_data, pages

        return [
            Route("/", pages.province(self), methods=["GET"]),
            Route("/tim", pages.search(self), methods=["GET"]),
            Route("/xa/{code}", pages.commune(self), methods=["GET"]),
            Route("/anh/cong-trinh/{update_id:int}.jpg", pages.photo(self), methods=["GET"]),
            Route("/du-lieu", open_data.index(self), methods=["GET"]),
            Route("/du-lieu/{name}.{fmt}", open_data.dataset(self), methods=["GET"]),
            Route("/open311/v2/services.json", open_data.services_json(self), methods=["GET"]),
            Route("/open311/v2/requests.json", open_data.requests_json(self), methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]


def _kept(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if k != "lang"}


def link(path: str, lang: str, **query: str) -> str:
    """A link on the site in this language: "/xa/02020?lang=en"."""
    if lang != "vi":
        query = {**query, "lang": lang}
    return f"{path}?{urlencode(query)}" if query else path
