"""Công trình: transcripts of villagers asking how a project is going, officials recording one
and posting its progress, subscribers told once per update, and project files."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app.services import Services
from bot.core.conversation import Incoming
from bot.core.dispatch import Dispatcher
from tests.conftest import Chat

OFFICIAL = "official-1"
REFUSAL = "Việc này chỉ cán bộ xã phụ trách mới làm được."


async def onboard(chat: Chat, commune: str = "cho don") -> None:
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say(commune)


async def test_smoke(chat: Chat, services: Services) -> None:
    await onboard(chat)
    print(await chat.say("/congtrinh"))
    print(chat.last[0].photo, chat.buttons)
    print(await chat.say("duong thon na lang lam den dau roi"))
    assert False
