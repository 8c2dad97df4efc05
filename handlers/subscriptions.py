"""Dân biết: what a villager receives — their commune's and the province's announcements,
campaign news, pledge reminders, new polls and their results, projects' progress, a digest —
and "dừng" to stop everything at any time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.conversation import Button, Context, Payload, Reply, Router, StalePayload
from bot.domain.i18n import N_, _
from bot.domain.text import fold
from bot.storage.subscriptions import DIGESTS, TOPICS
from handlers.common import ask_commune
from handlers.menu import with_menu

router = Router("subscriptions")
TOPIC_NAMES = {
    "commune_news": N_("Thông báo của xã"),
    "province_news": N_("Thông báo của tỉnh"),
    "campaign_news": N_("Tin các cuộc vận động"),
    "pledge_reminders": N_("Nhắc hẹn đóng góp"),
    "polls": N_("Bình chọn mới và kết quả"),
    "projects": N_("Tiến độ công trình"),
}
DIGEST_NAMES = {
    "daily": N_("Bản tin hằng ngày"),
    "weekly": N_("Bản tin hằng tuần"),
    "off": N_("Không nhận bản tin"),
}


@dataclass(frozen=True)
class ToggleTopic(Payload, prefix="sub:t"):
    topic: Literal[
        "commune_news", "province_news", "campaign_news", "pledge_reminders", "polls", "projects"
    ]


@dataclass(frozen=True)
class PickDigest(Payload, prefix="sub:d"):
    digest: Literal["daily", "weekly", "off"]


# One kind of message named and switched in words ("tắt thông báo công trình", "bật tin bình
# chọn"): folded, whole words. Anything else ("chỉ nhận tin của xã", two kinds) shows the list.
_TOPIC_WORDS = {
    "commune_news": ("cua xa", "tin xa", "thong bao xa", "commune news", "commune announcements"),
    "province_news": ("cua tinh", "tin tinh", "thong bao tinh", "province news", "provincial"),
    "campaign_news": ("van dong", "chien dich", "campaign"),
    "pledge_reminders": ("nhac hen", "nhac dong gop", "nhac nho", "reminder", "reminders"),
    "polls": ("binh chon", "poll", "polls"),
    "projects": ("cong trinh", "project", "projects", "construction"),
}
_OFF = ("tat", "khong nhan", "ko nhan", "k nhan", "khong muon nhan", "bo", "ngung", "thoi nhan")
_OFF_EN = ("turn off", "switch off", "disable", "no more", "stop")
_ON = ("bat", "mo", "nhan", "nhan lai", "turn on", "switch on", "enable")
_ONLY = ("chi", "only")


def _switch_asked(text: str) -> tuple[str, bool] | None:
    """The one kind of message the words name, and whether on; None if they do not say."""
    words = f" {fold(text)} "
    if any(f" {w} " in words for w in _ONLY):
        return None
    named = [t for t, names in _TOPIC_WORDS.items() if any(f" {n} " in words for n in names)]
    if len(named) != 1:
        return None
    if any(f" {w} " in words for w in (*_OFF, *_OFF_EN)):
        return named[0], False
    if any(f" {w} " in words for w in _ON):
        return named[0], True
    return None


def subscribed_line() -> str:
    return _("Bạn sẽ nhận thông báo của xã qua đây. Gõ “dừng” bất cứ lúc nào để ngừng nhận.")


@router.command("thongbao", "notifications", description=N_("Chọn thông báo muốn nhận"))
@router.button("sub:menu")
@router.intent("notifications")
async def settings(ctx: Context) -> Reply:
    """What the user receives, with a button to switch each on or off; one kind switched
    first when the words typed say so ("tắt thông báo công trình")."""
    sub = await ctx.services.subscriptions.get(*ctx.event.key)
    if sub is None:
        return ask_commune(ctx)
    if not sub.active:
        return Reply(
            _("Bạn đang không nhận thông báo nào."),
            [[Button("sub:resume", _("Nhận lại thông báo"))]],
        )
    lines = []
    asked = _switch_asked(ctx.text) if ctx.event.button is None and ctx.text else None
    if asked is not None:
        topic, on = asked
        if sub.topics[topic] != on:
            await ctx.services.subscriptions.choose(*ctx.event.key, **{topic: on})
            sub = await ctx.services.subscriptions.get(*ctx.event.key) or sub
        said = _("Đã bật: {topic}.") if on else _("Đã tắt: {topic}.")
        lines.append(said.format(topic=_(TOPIC_NAMES[topic])))
    lines.append(_("Bạn đang nhận:"))
    buttons = []
    for topic in TOPICS:
        mark = "✅" if sub.topics[topic] else "⬜"
        lines.append(f"{mark} {_(TOPIC_NAMES[topic])}")
        buttons.append(
            [
                Button(
                    ToggleTopic(topic).pack(),  # type: ignore[arg-type]
                    f"{mark} {_(TOPIC_NAMES[topic])}",
                )
            ]
        )
    lines.append("📰 " + _(DIGEST_NAMES[sub.digest]))
    buttons.append(
        [
            Button(
                PickDigest(d).pack(),  # type: ignore[arg-type]
                ("● " if d == sub.digest else "") + _(DIGEST_NAMES[d]),
            )
            for d in DIGESTS
        ]
    )
    buttons.append([Button("sub:stop", _("Dừng nhận tất cả"))])
    return Reply("\n".join(lines), buttons)


@router.button(ToggleTopic)
async def toggle(ctx: Context) -> Reply:
    """Switches one kind of message on or off."""
    sub = await ctx.services.subscriptions.get(*ctx.event.key)
    if sub is None:
        raise StalePayload("no subscription")
    topic = ctx.payload.topic
    await ctx.services.subscriptions.choose(*ctx.event.key, **{topic: not sub.topics[topic]})
    return await settings(ctx)


@router.button(PickDigest)
async def digest(ctx: Context) -> Reply:
    """Daily, weekly or no digest."""
    if await ctx.services.subscriptions.get(*ctx.event.key) is None:
        raise StalePayload("no subscription")
    await ctx.services.subscriptions.choose(*ctx.event.key, digest=ctx.payload.digest)
    return await settings(ctx)


@router.command("dung", "stop", "unsubscribe", description=N_("Dừng nhận mọi thông báo"))
@router.button("sub:stop")
@router.intent("stop")
async def stop(ctx: Context) -> Reply:
    """Unsubscribes from everything, with one line saying how to come back."""
    await ctx.services.subscriptions.stop(*ctx.event.key)
    return with_menu(_("Đã dừng gửi mọi thông báo cho bạn. Gõ /batdau để nhận lại."))


@router.command("batdau", "resume", description=N_("Nhận lại thông báo"))
@router.button("sub:resume")
@router.intent("resume")
async def resume(ctx: Context) -> Reply:
    """Subscribes again (after "dừng", or after having blocked the bot)."""
    sub = await ctx.services.subscriptions.get(*ctx.event.key)
    if sub is None:
        return ask_commune(ctx)
    if sub.active and ctx.event.button is None and _switch_asked(ctx.text):
        return await settings(ctx)  # "bật lại thông báo công trình": that kind, switched on
    await ctx.services.subscriptions.resume(*ctx.event.key)
    return with_menu(_("Đã nhận lại thông báo. Chọn loại tin ở /thongbao."))
