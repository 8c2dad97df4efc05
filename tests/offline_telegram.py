"""An offline Bot API: canned answers, every call recorded, anything unexpected fails.

Built like python-telegram-bot's own test doubles: the real `Bot` serialises each call and
parses each answer, only the HTTP round trip is replaced.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from telegram.request import BaseRequest, RequestData

BOT_ID = 123456
TOKEN = f"{BOT_ID}:" + "A" * 35
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Chung Sức",
    "username": "ChungSucBot",
    "can_join_groups": False,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


class UnexpectedCall(AssertionError):
    """The bot called a Bot API method this double has no answer for."""


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]


class OfflineRequest(BaseRequest):
    """Answers getMe, sendMessage, sendPhoto, answerCallbackQuery, setMyCommands, deleteWebhook,
    getUpdates, and getFile and the download for the files put in `files`.

    `fail` maps a method to the description of an error answer (HTTP 400) it gets instead.
    `before_answer` is awaited before a call reaches the "server" (a test can hold one reply
    back, as a slow network would); calls are recorded in the order they arrive.
    python-telegram-bot turns any exception here into a NetworkError that the application
    only logs, so unexpected calls are also kept in `unexpected` for the test to assert on.
    """

    def __init__(
        self,
        fail: dict[str, str] | None = None,
        before_answer: Callable[[Call], Awaitable[None]] | None = None,
        record: bool = True,
    ) -> None:
        self.fail = dict(fail or {})
        self.before_answer = before_answer
        self.record = record
        self.calls: list[Call] = []
        self._sent_to: dict[Any, list[dict[str, Any]]] = {}  # chat → sendMessage params
        self.unexpected: list[str] = []
        self._message_ids = itertools.count(1000)
        self.files: dict[str, bytes] = {}  # file id → contents: getFile and its download

    @property
    def read_timeout(self) -> float | None:
        return None

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        if "/file/bot" in url:  # a download of a file getFile pointed to
            file_id = url.rsplit("/", 1)[-1]
            if file_id not in self.files:
                self.unexpected.append(f"download {file_id}")
                return 404, b""
            self.calls.append(Call("download", {"file_id": file_id}))
            return 200, self.files[file_id]
        call = Call(url.rsplit("/", 1)[-1], request_data.parameters if request_data else {})
        if self.before_answer is not None:
            await self.before_answer(call)
        if self.record:
            self.calls.append(call)
            if call.method == "sendMessage":  # indexed: benchmarks look a chat up per step
                self._sent_to.setdefault(call.params["chat_id"], []).append(call.params)
        if call.method in self.fail:
            error = {"ok": False, "error_code": 400, "description": self.fail[call.method]}
            return 400, json.dumps(error).encode()
        answer = self._answer(call)
        return 200, json.dumps({"ok": True, "result": answer}).encode()

    def _answer(self, call: Call) -> Any:
        if call.method == "getMe":
            return BOT_USER
        if call.method in ("answerCallbackQuery", "setMyCommands", "deleteWebhook"):
            return True
        if call.method == "getUpdates":
            return []
        if call.method == "getFile" and call.params["file_id"] in self.files:
            file_id = call.params["file_id"]
            size = len(self.files[file_id])
            return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": size} | {
                "file_path": f"documents/{file_id}"
            }
        if call.method == "sendPhoto":
            chat_id = call.params["chat_id"]
            return {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "photo": [
                    {
                        "file_id": call.params["photo"],
                        "file_unique_id": "p",
                        "width": 1,
                        "height": 1,
                    }
                ],
            }
        if call.method == "sendMessage":
            chat_id = call.params["chat_id"]
            message = {
                "message_id": next(self._message_ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if int(chat_id) > 0 else "group"},
                "from": BOT_USER,
                "text": call.params["text"],
            }
            if "reply_markup" in call.params:
                message["reply_markup"] = call.params["reply_markup"]
            return message
        self.unexpected.append(call.method)
        raise UnexpectedCall(f"unexpected Bot API call {call.method}({call.params})")

    def params(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call to one method, in order."""
        return [c.params for c in self.calls if c.method == method]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """sendMessage parameters, optionally only those to one chat."""
        if chat_id is None:
            return self.params("sendMessage")
        return list(self._sent_to.get(chat_id, []))

    def clear(self) -> None:
        self.calls.clear()
        self._sent_to.clear()


# Updates as Telegram sends them. Private chats have the user's id as chat id.

_update_ids = itertools.count(1)
_message_ids = itertools.count(1)


def _user(user_id: int, language_code: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"Người {user_id}"}
    if language_code:
        user["language_code"] = language_code
    return user


def _message(user_id: int, language_code: str | None, **content: Any) -> dict[str, Any]:
    return {
        "message_id": next(_message_ids),
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": f"Người {user_id}"},
        "from": _user(user_id, language_code),
        **content,
    }


def text_update(user_id: int, text: str, language_code: str | None = "vi") -> dict[str, Any]:
    message = _message(user_id, language_code, text=text)
    if text.startswith("/"):
        command = text.split()[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"update_id": next(_update_ids), "message": message}


def callback_update(user_id: int, data: str, language_code: str | None = "vi") -> dict[str, Any]:
    """A button pressed under an earlier bot message in the user's private chat."""
    shown = _message(user_id, None, text="…")
    shown["from"] = BOT_USER
    query = {
        "id": str(next(_update_ids) * 7919),
        "from": _user(user_id, language_code),
        "chat_instance": f"ci-{user_id}",
        "message": shown,
        "data": data,
    }
    return {"update_id": next(_update_ids), "callback_query": query}


def sticker_update(user_id: int, language_code: str | None = "vi") -> dict[str, Any]:
    sticker = dict(file_id="CAACAgIAAxkBAAEB", file_unique_id="AgADBAAD", type="regular")
    sticker |= dict(width=512, height=512, is_animated=False, is_video=False, emoji="👍")
    message = _message(user_id, language_code, sticker=sticker)
    return {"update_id": next(_update_ids), "message": message}


def photo_update(user_id: int, language_code: str | None = "vi") -> dict[str, Any]:
    photo = [
        dict(file_id=f"AgACAgIAAx{px}", file_unique_id=f"AQAD{px}", width=px, height=px)
        for px in (90, 320, 800)
    ]
    message = _message(user_id, language_code, photo=photo, caption="Đường thôn mới làm")
    return {"update_id": next(_update_ids), "message": message}


def document_update(
    user_id: int, file_id: str, name: str, size: int, language_code: str | None = "vi"
) -> dict[str, Any]:
    """A file sent in the private chat (a spreadsheet), as Telegram describes it."""
    document: dict[str, Any] = {"file_id": file_id, "file_unique_id": f"u{file_id}"}
    document |= {"file_name": name, "file_size": size}
    message = _message(user_id, language_code, document=document)
    return {"update_id": next(_update_ids), "message": message}
