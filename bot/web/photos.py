"""Project photos on the site: a Telegram photo of a project update, fetched through the Bot API
once (the first time a page or the open data needs it), kept on disk under `photo_dir` as
`{update id}.jpg`, and served at /anh/cong-trinh/{update id}.jpg.

Pillow is not a dependency, so a photo is stored as Telegram gives it (Telegram re-encodes
photos as JPEG), refused over MAX_BYTES, with its metadata segments (EXIF, XMP, IPTC, comments:
a camera's place and owner) cut out. A photo of another messenger (a Zalo id), or with no
Telegram token in this process, or whose download failed (logged once), has no image: the page
says the photo is in the chat instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from bot.core.files import CannotFetch, Files, FileTooBig
from bot.storage.projects import ProjectUpdate

log = logging.getLogger(__name__)

CHANNEL = "telegram"  # the one messenger whose files this site can fetch
MAX_BYTES = 400_000  # Telegram's largest size of a phone photo is ~100-300 KB
FETCH_SECONDS = 10.0
URL = "/anh/cong-trinh/{id}.jpg"
# Markers of the segments dropped: APP1 (EXIF, XMP), APP13 (IPTC), COM (a comment).
_DROPPED = {0xE1, 0xED, 0xFE}


class NotJpeg(ValueError):
    """The bytes are not a JPEG this module can read."""


def strip_metadata(jpeg: bytes) -> bytes:
    """The JPEG without its EXIF, XMP, IPTC and comment segments; the image data as it was."""
    if jpeg[:2] != b"\xff\xd8":
        raise NotJpeg("no start of image")
    kept = [b"\xff\xd8"]
    at = 2
    while True:
        if at + 4 > len(jpeg) or jpeg[at] != 0xFF:
            raise NotJpeg(f"no segment at byte {at}")
        marker = jpeg[at + 1]
        if marker == 0xDA:  # start of scan: the image data follows, to the end
            kept.append(jpeg[at:])
            return b"".join(kept)
        length = int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if length < 2 or at + 2 + length > len(jpeg):
            raise NotJpeg(f"segment {marker:#x} runs past the end")
        if marker not in _DROPPED:
            kept.append(jpeg[at : at + 2 + length])
        at += 2 + length


class ProjectPhotos:
    """The stored photos of project updates, fetched at most once per process each."""

    def __init__(self, directory: Path, files: Files) -> None:
        self.directory = directory
        self._files = files
        self._failed: set[int] = set()  # updates whose photo could not be had: no retry, no log
        self._lock = asyncio.Lock()  # one download at a time: two pages never fetch one twice

    def path(self, update_id: int) -> Path:
        return self.directory / f"{update_id}.jpg"

    async def url(self, update: ProjectUpdate) -> str | None:
        """The photo's address on the site, fetched and stored first if need be; None if the
        site has no image of it (another messenger's, no token, or the download failed)."""
        if update.photo is None or update.photo_channel != CHANNEL:
            return None
        if not self.path(update.id).exists():
            if update.id in self._failed or not self._files.can_fetch(CHANNEL):
                return None
            async with self._lock:
                if not self.path(update.id).exists() and not await self._fetch(update):
                    return None
        return URL.format(id=update.id)

    async def _fetch(self, update: ProjectUpdate) -> bool:
        assert update.photo is not None
        try:
            data = await asyncio.wait_for(
                self._files.fetch(CHANNEL, update.photo, MAX_BYTES), FETCH_SECONDS
            )
            clean = strip_metadata(data)
        except (CannotFetch, FileTooBig, NotJpeg, TimeoutError) as error:
            self._failed.add(update.id)
            log.warning("No photo for project update %s: %s", update.id, error or "timed out")
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        part = self.path(update.id).with_suffix(".part")
        part.write_bytes(clean)
        os.replace(part, self.path(update.id))  # whole or absent, for every worker
        return True
