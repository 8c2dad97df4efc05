"""Webhook request bodies, read with a size cap and a time limit.

Anyone can post to a webhook, and the Zalo OA signature can only be checked once the body is
in: without limits, a few large or slow bodies hold memory and connections for as long as
the sender likes.
"""

from __future__ import annotations

import asyncio

from starlette.requests import ClientDisconnect, Request


class BodyRefused(Exception):
    """The body was not read whole: `status` is the answer (None: the client has gone)."""

    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(reason)
        self.status = status


async def read_body(request: Request, limit: int, within: float) -> bytes:
    """The body, if it is at most `limit` bytes and arrives within `within` seconds.

    A declared Content-Length over the limit is refused before a byte is read; a body without
    one (chunked) is counted as it arrives and refused as soon as it is over.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyRefused(413, f"Content-Length {declared} is over the {limit}-byte limit")
    body = bytearray()
    try:
        async with asyncio.timeout(within):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise BodyRefused(413, f"body is over the {limit}-byte limit")
    except TimeoutError:
        raise BodyRefused(408, f"body not received within {within:g} s") from None
    except ClientDisconnect:
        raise BodyRefused(None, "client disconnected before sending the whole body") from None
    return bytes(body)
