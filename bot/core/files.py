"""Files users send (a spreadsheet), fetched through the channel they came on.

A channel that can carry files registers how it fetches one (Telegram: getFile, then the
download); handlers ask `Files` by channel and never see a messenger. Tests register a fake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Fetch = Callable[[str, int], Awaitable[bytes]]  # (file id, at most this many bytes) → contents


class FileTooBig(Exception):
    """The channel says, or the download shows, the file is over the size given."""


class CannotFetch(Exception):
    """The channel could not give the file (gone, network); the message says why, for logs."""


class Files:
    def __init__(self) -> None:
        self._fetchers: dict[str, Fetch] = {}

    def register(self, channel: str, fetch: Fetch) -> None:
        self._fetchers[channel] = fetch

    def can_fetch(self, channel: str) -> bool:
        """Whether files sent on this channel can be read here (this process runs it)."""
        return channel in self._fetchers

    async def fetch(self, channel: str, file_id: str, max_bytes: int) -> bytes:
        """The file's contents; FileTooBig over `max_bytes`, CannotFetch if it cannot be had."""
        fetch = self._fetchers.get(channel)
        if fetch is None:
            raise CannotFetch(f"no file fetcher for {channel}")
        data = await fetch(file_id, max_bytes)
        if len(data) > max_bytes:
            raise FileTooBig(f"{len(data)} bytes")
        return data
