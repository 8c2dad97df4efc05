"""A small Markdown subset for news and announcements, rendered to Telegram HTML and to plain
text: paragraphs, "- " lists, **bold**, *italic* and [links](https://…). Everything else is
text, escaped."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![*\w])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![*\w])")


def _inline_html(text: str) -> str:
    out, last = [], 0
    for match in _LINK.finditer(text):
        out.append(_emphasis_html(html.escape(text[last : match.start()], quote=False)))
        label = _emphasis_html(html.escape(match[1], quote=False))
        out.append(f'<a href="{html.escape(match[2], quote=True)}">{label}</a>')
        last = match.end()
    out.append(_emphasis_html(html.escape(text[last:], quote=False)))
    return "".join(out)


def _emphasis_html(escaped: str) -> str:
    escaped = _BOLD.sub(r"<b>\1</b>", escaped)
    return _ITALIC.sub(r"<i>\1</i>", escaped)


def _inline_plain(text: str) -> str:
    text = _LINK.sub(r"\1 (\2)", text)
    text = _BOLD.sub(r"\1", text)
    return _ITALIC.sub(r"\1", text)


def _blocks(source: str) -> list[list[str]]:
    return [
        [line.strip() for line in block.strip().splitlines() if line.strip()]
        for block in re.split(r"\n\s*\n", source.strip())
        if block.strip()
    ]


def _render(source: str, inline: Callable[[str], str], bullet: str) -> str:
    paragraphs = []
    for lines in _blocks(source):
        rendered = []
        for line in lines:
            if line.startswith(("- ", "* ")):
                rendered.append(bullet + inline(line[2:].strip()))
            else:
                rendered.append(inline(line))
        paragraphs.append("\n".join(rendered))
    return "\n\n".join(paragraphs)


def to_telegram_html(source: str) -> str:
    return _render(source, _inline_html, "• ")


def to_plain(source: str) -> str:
    return _render(source, _inline_plain, "• ")
