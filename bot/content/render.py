"""Jinja2 templates from content/templates, translated through the same catalogs as the code."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.content.reference import localized
from bot.domain import i18n
from bot.domain.paths import TEMPLATES_DIR
from bot.domain.quantities import households


def build_environment(html: bool = False) -> Environment:
    """Plain text for the chat; with `html`, the same catalogs and formats with HTML escaped
    (the public site's templates under web/)."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
        # Plain text for every channel (adapters escape for their markup); the site escapes.
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=False)  # type: ignore[attr-defined]
    env.filters.update(
        number=i18n.fmt_number,
        compact=i18n.fmt_compact,
        date=i18n.fmt_date,
        datetime=i18n.fmt_datetime,
        localized=localized,
        households=households,
    )
    return env


class Renderer:
    def __init__(self) -> None:
        self.env = build_environment()

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(name).render(**context).strip()
