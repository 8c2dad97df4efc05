"""Fake Zalo Bot API and Zalo OA / OAuth servers: small Starlette apps under uvicorn on
127.0.0.1. They record every request, answer in the real APIs' shapes (`{"ok": …}` for the
Bot API, `{"error": 0, "data": …}` for the OA) and can be told to fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

BOT_TOKEN = "3141592653:zalo-bot-token-DO-NOT-LOG"


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until `check()` holds: replies are sent in the background."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


# --- Zalo Bot Platform --------------------------------------------------------------------

_ids = itertools.count(1)


def _zalo_message(user_id: str, **content: Any) -> dict[str, Any]:
    return {
        "from": {"id": user_id, "display_name": f"Người {user_id}", "is_bot": False},
        "chat": {"id": user_id, "chat_type": "PRIVATE"},
        "message_id": f"{next(_ids):08x}",
        "date": int(time.time() * 1000),
        **content,
    }


def text_update(user_id: str, text: str) -> dict[str, Any]:
    message = _zalo_message(user_id, text=text)
    return {"event_name": "message.text.received", "message": message}


def image_update(user_id: str) -> dict[str, Any]:
    message = _zalo_message(user_id, photo_url="https://example.org/a.jpg", caption="Đường")
    return {"event_name": "message.image.received", "message": message}


def sticker_update(user_id: str) -> dict[str, Any]:
    message = _zalo_message(user_id, sticker="ab12", url="https://example.org/s.png")
    return {"event_name": "message.sticker.received", "message": message}


def voice_update(user_id: str) -> dict[str, Any]:
    message = _zalo_message(user_id, voice_url="https://example.org/v.aac")
    return {"event_name": "message.voice.received", "message": message}


class FakeZaloBot:
    """The Bot API at /bot<token>/<method>. `fail[method]` holds answers to give instead."""

    def __init__(self, token: str = BOT_TOKEN, max_wait: float = 0.2) -> None:
        self.token = token
        self.max_wait = max_wait  # getUpdates long-polls at most this long, then 408
        self.calls: list[Call] = []
        self.updates: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.fail: dict[str, list[tuple[int, Any]]] = {}
        self.app = Starlette(
            routes=[Route("/bot{token}/{method}", self._endpoint, methods=["POST"])]
        )

    def push(self, update: dict[str, Any]) -> None:
        self.updates.put_nowait(update)

    def params(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    def sent(self) -> list[str]:
        """The texts the bot sent, in order."""
        return [p["text"] for p in self.params("sendMessage")]

    async def _next_update(self, request: Request, wait: float) -> dict[str, Any] | None:
        """The next update, or None after `wait` s; a poller that hung up gets none."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not await request.is_disconnected():
            try:
                return await asyncio.wait_for(self.updates.get(), 0.02)
            except TimeoutError:
                continue
        return None

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        raw = await request.body()
        params = json.loads(raw) if raw else {}
        self.calls.append(Call(method, params))
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"})
        if self.fail.get(method):
            status, body = self.fail[method].pop(0)
            if isinstance(body, str):
                return Response(body, status, media_type="text/html")
            return JSONResponse(body, status)
        if method == "getUpdates":
            update = await self._next_update(
                request, min(float(params.get("timeout", 30)), self.max_wait)
            )
            if update is None:
                return JSONResponse({"ok": False, "error_code": 408, "description": "timeout"})
            return JSONResponse({"ok": True, "result": update})
        if method == "sendMessage":
            result = {"message_id": f"{next(_ids):08x}", "date": int(time.time() * 1000)}
            return JSONResponse({"ok": True, "result": result})
        if method == "getMe":
            me = {"id": "b0t", "account_name": "bot.chungsuc", "account_type": "BASIC"}
            return JSONResponse({"ok": True, "result": me})
        if method in ("setWebhook", "deleteWebhook"):
            return JSONResponse({"ok": True, "result": {"url": params.get("url", "")}})
        return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"})


# --- Zalo Official Account ----------------------------------------------------------------

OA_APP_ID = "4318237659425371234"
OA_SECRET_KEY = "oa-webhook-secret-key"
OA_APP_SECRET = "oa-app-secret"
OA_FIRST_REFRESH = "refresh-0"
_msg_ids = itertools.count(1)


def oa_event(name: str, user_id: str, text: str | None = None, **extra: Any) -> dict[str, Any]:
    """An OA webhook event as Zalo posts it (timestamp in milliseconds, as a string)."""
    event: dict[str, Any] = {
        "app_id": OA_APP_ID,
        "user_id_by_app": f"app-{user_id}",
        "event_name": name,
        "timestamp": str(int(time.time() * 1000)),
        "recipient": {"id": "oa-1"},
    }
    if name in ("follow", "unfollow"):
        event["follower"] = {"id": user_id}
    else:
        event["sender"] = {"id": user_id}
        event["message"] = {"msg_id": f"m{next(_msg_ids)}"}
        if text is not None:
            event["message"]["text"] = text
    return event | extra


def signed(event: dict[str, Any], secret_key: str = OA_SECRET_KEY) -> tuple[bytes, dict[str, str]]:
    """The raw body and the X-ZEvent-Signature header Zalo would send with it."""
    raw = json.dumps(event, ensure_ascii=False).encode()
    mac = hashlib.sha256(
        OA_APP_ID.encode() + raw + event["timestamp"].encode() + secret_key.encode()
    )
    return raw, {"X-ZEvent-Signature": "mac=" + mac.hexdigest(), "Content-Type": "application/json"}


class FakeZaloOa:
    """openapi.zalo.me's message/cs and oauth.zaloapp.com's token refresh on one server.

    A refresh token works once, as on Zalo; `valid_access` are the access tokens it accepts.
    """

    def __init__(self) -> None:
        self.refresh_token = OA_FIRST_REFRESH
        self.valid_access: set[str] = set()
        self.messages: list[Call] = []  # every attempt, accepted or not
        self.delivered: list[tuple[str, str]] = []  # (user id, text)
        self.refreshes: list[Call] = []
        self.fail_refresh: list[tuple[int, Any]] = []
        self.fail_send: list[tuple[int, Any]] = []
        self._issued = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/v3.0/oa/message/cs", self._message, methods=["POST"]),
                Route("/v4/oa/access_token", self._refresh, methods=["POST"]),
            ]
        )

    def texts(self, user_id: str | None = None) -> list[str]:
        """The texts delivered (accepted with a valid token), in order."""
        return [text for to, text in self.delivered if user_id in (None, to)]

    async def _message(self, request: Request) -> Response:
        call = Call("message/cs", await request.json(), dict(request.headers))
        self.messages.append(call)
        if self.fail_send:
            status, body = self.fail_send.pop(0)
            return JSONResponse(body, status)
        if call.headers.get("access_token") not in self.valid_access:
            return JSONResponse({"error": -216, "message": "Access token is invalid"})
        to = call.params["recipient"]["user_id"]
        self.delivered.append((to, call.params["message"]["text"]))
        data = {"message_id": f"oa{next(_msg_ids)}", "user_id": to}
        return JSONResponse({"error": 0, "message": "Success", "data": data})

    async def _refresh(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        call = Call("access_token", form, dict(request.headers))
        self.refreshes.append(call)
        if self.fail_refresh:
            status, body = self.fail_refresh.pop(0)
            return JSONResponse(body, status)
        if (
            call.headers.get("secret_key") != OA_APP_SECRET
            or form.get("app_id") != OA_APP_ID
            or form.get("grant_type") != "refresh_token"
        ):
            return JSONResponse({"error": -14001, "error_name": "Invalid parameter"})
        if form.get("refresh_token") != self.refresh_token:
            return JSONResponse({"error": -14014, "error_name": "Invalid refresh token"})
        n = next(self._issued)
        access, self.refresh_token = f"access-{n}", f"refresh-{n}"
        self.valid_access.add(access)
        answer = {
            "access_token": access,
            "refresh_token": self.refresh_token,
            "expires_in": "90000",
        }
        return JSONResponse(answer)
