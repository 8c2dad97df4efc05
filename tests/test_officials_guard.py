"""The officials' guard: declared on every official route, checked by the dispatcher at every
update of an official flow, so a villager is refused and a grant revoked mid-flow stops it."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app.services import Services
from bot.core.conversation import Document, Incoming, Router
from bot.core.dispatch import Dispatcher
from bot.storage.officials import Grant
from bot.storage.schema import audit_log, broadcasts, campaigns, contributions
from handlers import build_router
from handlers.menu import main_menu
from tests.conftest import Chat

REFUSAL = "Việc này chỉ cán bộ xã phụ trách mới làm được."
OFFICIALS_MENU = "Cán bộ:"  # how the command menu tells officials what is theirs
CHO_DON, NA_RI = "02020", "02155"  # two communes of the sample province (19)
CHANNELS = ["terminal", "telegram", "zalo"]


def root() -> Router:
    return build_router()[0]


def official_command_names(router: Router) -> set[str]:
    """Every name of every command the menu shows as an official's ("Cán bộ: …")."""
    return {
        name
        for spec in router.command_specs
        if spec.description.startswith(OFFICIALS_MENU)
        for name in spec.names
    }


class Watched(Chat):
    """A chat that remembers every step it was put in and every button it was offered."""

    def __init__(self, dispatcher: Dispatcher, channel: str, user_id: str) -> None:
        super().__init__(dispatcher, channel, user_id)
        self.states: set[str] = set()
        self.offered: set[str] = set()

    async def send(self, event: Incoming) -> str:
        answer = await super().send(event)
        services = self.dispatcher.services
        user = await services.users.load(self.channel, self.user_id, "vi")
        if user.state is not None:
            self.states.add(user.state)
        self.offered |= set(self.buttons)
        return answer


async def state_of(chat: Chat) -> str | None:
    return (await chat.dispatcher.services.users.load(chat.channel, chat.user_id, "vi")).state


async def onboard(chat: Chat, commune: str = "cho don") -> None:
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say(commune)


async def pledged(villager: Chat, services: Services) -> int:
    """A Chợ Đồn villager's new pledge of money (registered, waiting for an official)."""
    await onboard(villager)
    await villager.say("/dongop")
    await villager.press("contrib:vil:0")
    await villager.press("contrib:kind:money")
    await villager.say("500k")
    await villager.press("contrib:when:now")
    await villager.press("contrib:public:no")
    await villager.press(next(b for b in villager.buttons if b.startswith("contrib:ok:")))
    [gift] = await services.contributions.of_user(villager.channel, villager.user_id)
    return gift.id


async def filed(villager: Chat, text: str = "Đường thôn bị sạt một đoạn dài") -> int:
    """A villager's new report (a road, no photo, no village), waiting for an official."""
    await villager.say("/phananh")
    await villager.press("report:cat:roads")
    await villager.say(text)
    await villager.press("report:skip")
    await villager.press("report:novil")
    done = await villager.press(next(b for b in villager.buttons if b.startswith("report:ok:")))
    return int(done.split("Mã phản ánh: PA-26-")[1][:5])


async def official_of(
    services: Services, dispatcher: Dispatcher, channel: str, commune: str = CHO_DON
) -> Watched:
    await services.officials.grant(f"{channel}:cb", "commune_official", commune, "test")
    return Watched(dispatcher, channel, "cb")


async def revoke(official: Chat, commune: str = CHO_DON) -> None:
    services = official.dispatcher.services
    assert await services.officials.revoke(f"{official.channel}:cb", "commune_official", commune)


async def world(services: Services) -> dict[str, Any]:
    """What an official action would change: audit rows, statuses, campaigns, broadcasts."""
    async with services.db.read() as conn:

        async def rows(table: Any) -> int:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

        statuses = await conn.execute(select(contributions.c.id, contributions.c.status))
        return {
            "audit": await rows(audit_log),
            "campaigns": await rows(campaigns),
            "broadcasts": await rows(broadcasts),
            "statuses": sorted((r.id, r.status) for r in statuses),
        }


# --- the declarations: no official route without the guard ----------------------------------


def test_every_official_route_is_declared_behind_the_guard() -> None:
    """An official command is one the menu lists under "Cán bộ:"; every other route that runs
    the same handler, every step of its flows and their buttons must be declared official too,
    and no free-text intent may reach an official handler around the guard."""
    router = root()
    named = official_command_names(router)
    assert {
        "duyet",
        "taophongtrao",
        "thongbaomoi",
        "tiendogui",
        "taobinhchon",
        "xulyphananh",
        "taocongtrinh",
        "capnhatcongtrinh",
        "nhapsolieu",
    } <= named
    assert router.official_commands == named  # and officials see all theirs in the menu
    steps = [s for s in router.steps.values() if s.official]
    handlers = (
        {router.commands[n] for n in router.official_commands}
        | {router.buttons[p] for p in router.official_buttons}
        | {s.answer for s in steps if s.answer is not None}
    )
    asks = {s.ask for s in steps}
    unguarded = [f"/{n}" for n, h in router.commands.items() if h in handlers] + [
        p for p, h in router.buttons.items() if h in handlers
    ]
    unguarded = [r for r in unguarded if r.lstrip("/") not in router.official_commands]
    unguarded = [r for r in unguarded if r.startswith("/") or r not in router.official_buttons]
    unguarded += [
        f"step {s.name}"
        for s in router.steps.values()
        if not s.official and (s.ask in asks or s.answer in handlers)
    ]
    unguarded += [
        f"button {p} of step {s.name}"
        for s in steps
        for p in s.buttons
        if p not in router.official_buttons
    ]
    unguarded += [f"intent {i}" for i, h in router.intents.items() if h in handlers]
    assert unguarded == []
    assert {s.name for s in steps} >= {
        "review:reason",
        "camp:name",
        "camp:ok",
        "ann:confirm",
        "poll:confirm",
        "report:answer",
        "report:dup",
        "proj:ok",
        "projup:ok",
        "upload:ok",
    }


async def test_every_step_and_button_an_official_meets_is_guarded(
    services: Services, dispatcher: Dispatcher
) -> None:
    """Walk each official flow to its end and check every step it went through and every
    button it offered (but the menu's, open to all) against the declarations."""
    router = root()
    gift = await pledged(Chat(dispatcher, "telegram", "v1"), services)
    review = await official_of(services, dispatcher, "telegram")
    await review.say("/duyet")
    assert f"review:no:{gift}" in review.buttons
    assert any(b.startswith("review:more:") for b in review.buttons)
    await review.press(next(b for b in review.buttons if b.startswith("review:more:")))
    await review.say("/duyet")
    assert "Lý do từ chối" in await review.press(f"review:no:{gift}")
    assert "người góp đã được báo lý do" in await review.say("Trùng đăng ký")
    await review.press("review:list")

    campaign = await official_of(services, dispatcher, "zalo", NA_RI)
    assert "Tên cuộc vận động" in await campaign.say("/taophongtrao")
    await campaign.say("Nhà văn hóa bản Cuôn")
    await campaign.press("camp:kind:money")
    await campaign.press("camp:kinds")
    await campaign.say("200 triệu")
    await campaign.say("31/12/2026")
    assert "Đã mở" in await campaign.press("camp:ok")

    announce = await official_of(services, dispatcher, "terminal")
    await announce.say("/thongbaomoi")
    await announce.say("Họp thôn tối nay")
    await announce.press(f"ann:scope:commune:{CHO_DON}")
    await announce.press("ann:now")
    assert "Đã lên lịch thông báo" in await announce.press("ann:go")
    assert "#" in await announce.press("ann:progress")
    await announce.say("/tiendogui")

    poll = await official_of(services, dispatcher, "zalo", NA_RI)
    await poll.say("/taobinhchon")
    await poll.say("Họp thôn ngày nào?")
    await poll.say("Thứ bảy\nChủ nhật")
    await poll.press("poll:opts")
    await poll.press("poll:kind")
    await poll.press("poll:more")
    await poll.say("Ai chủ trì?")
    await poll.say("Trưởng thôn\nBí thư")
    await poll.press("poll:opts")
    await poll.press("poll:more")
    await poll.say("Góp ý thêm?")
    await poll.press("poll:free")
    await poll.press("poll:next")
    await poll.say("18:00 5/12")
    await poll.press("poll:res:after_close")
    assert "Đã mở bình chọn" in await poll.press("poll:ok")
    await poll.say("/ykienbinhchon")
    assert "chưa có ai gõ ý kiến" in await poll.press(
        next(b for b in poll.buttons if b.startswith("poll:words:"))
    )

    reporter = Chat(dispatcher, "telegram", "v3")
    await onboard(reporter)
    first, second = await filed(reporter), await filed(reporter, "Cầu tràn Bản Cuôn ngập nước")
    third = await filed(reporter, "Ổ gà lớn trước cổng trường")
    fourth = await filed(reporter, "Cống thoát nước đầu dốc bị vỡ")
    desk = await official_of(services, dispatcher, "terminal")
    await desk.say("/xulyphananh")
    await desk.press(f"report:recv:{first}")
    await desk.press("report:queue")
    await desk.press(f"report:work:{first}")
    await desk.press("report:queue")
    assert "việc đã giải quyết thế nào?" in await desk.press(f"report:end:{first}:resolved")
    assert "người phản ánh đã được báo" in await desk.say("Đã sửa xong đoạn đường")
    await desk.say("/reports")
    assert "trùng với phản ánh nào?" in await desk.press(f"report:end:{second}:duplicate")
    await desk.say("PA-26-00001")
    assert "người phản ánh đã được báo" in await desk.say("Đang xử lý theo phản ánh trước")
    await desk.say("/xulyphananh")
    assert "là tin rác?" in await desk.press(f"report:spam:{third}")
    assert "“tin rác”" in await desk.press(f"report:spamok:{third}")
    province = Watched(dispatcher, "zalo", "pcb")
    await services.officials.grant("zalo:pcb", "province_official", "19", "test")
    await province.say("/xulyphananh")
    assert "chuyển cho xã nào?" in await province.press(f"report:move:{fourth}")
    assert "đã chuyển cho Xã Na Rì" in await province.say("na ri")
    await province.say("/taobinhchon")  # a poll of the whole province
    await province.say("Làm đường nào trước?")
    await province.say("Đường liên xã\nĐường nội thôn")
    await province.press("poll:opts")
    await province.press("poll:next")
    await province.press("poll:province")
    await province.say("18:00 5/12")
    await province.press("poll:res:after_vote")
    assert "Đã mở bình chọn" in await province.press("poll:ok")

    project = await official_of(services, dispatcher, "telegram")
    assert "Tên công trình?" in await project.say("/taocongtrinh")
    await project.say("Cầu treo bản Cuôn")
    await project.press("proj:vil:0")
    await project.press(next(b for b in project.buttons if b.startswith("proj:camp:")))
    await project.press("proj:camps")
    await project.say("nhà nước 3 tỷ")
    await project.say("bỏ qua")
    assert "Đã lưu công trình" in await project.press("proj:ok")
    assert "Cập nhật công trình nào?" in await project.say("/capnhatcongtrinh")
    await project.press(next(b for b in project.buttons if b.startswith("projup:pick:")))
    await project.press("projup:st:building")
    await project.say("30")
    await project.say("Đã làm xong móng cầu")
    assert "Đã đăng cập nhật" in await project.press("projup:ok")

    upload = await official_of(services, dispatcher, "telegram", NA_RI)
    held = {"f1": b"ma_xa,bo_tieu_chi,tieu_chi,dat,ngay_danh_gia,don_vi_cong_bo,nguon\n"}
    held["f1"] += b"02155,2026-2030,1,co,30/06/2026,UBND,BC 1\n"

    async def fetch(file_id: str, max_bytes: int) -> bytes:
        return held[file_id]

    services.files.register("telegram", fetch)
    assert "Gửi tệp bảng số liệu" in await upload.say("/nhapsolieu")
    document = Document("f1", "so-lieu.csv", len(held["f1"]))
    sent = Incoming("telegram", "cb", unsupported="document", document=document)
    assert "Nhập số liệu này?" in await upload.send(sent)
    assert "Đã nhập 1 dòng" in await upload.press("upload:ok")

    open_to_all = {b.id for row in main_menu() for b in row} | {"menu:main"}
    open_to_all |= {"proj:list"}  # the card's "Công trình của xã", as every villager has it
    for walked in (review, campaign, announce, poll, desk, province, project, upload):
        assert walked.states, walked.channel
        assert [s for s in walked.states if not router.steps[s].official] == []
        found = [router.find_button(b) for b in walked.offered - open_to_all]
        assert [f for f in found if f is None or f[0] not in router.official_buttons] == []


# --- villagers ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(official_command_names(root())))
async def test_a_villager_typing_an_official_command_is_refused_and_nothing_changes(
    chat: Chat, services: Services, command: str, caplog: pytest.LogCaptureFixture
) -> None:
    await onboard(chat)
    before = await world(services)
    with caplog.at_level(logging.WARNING):
        answer = await chat.say(f"/{command}")
    assert answer == REFUSAL
    assert "status:card" in chat.buttons  # the menu, so nobody is stuck
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"{chat.channel}:{chat.user_id} refused an official action" in line.getMessage()
    assert await world(services) == before
    assert await state_of(chat) is None


async def test_a_villager_mid_pledge_typing_an_official_command_keeps_the_pledge(
    chat: Chat, services: Services
) -> None:
    await onboard(chat)
    await chat.say("/dongop")
    await chat.press("contrib:vil:0")
    assert "Bạn góp bao nhiêu?" in await chat.press("contrib:kind:money")
    answer = await chat.say("/duyet")
    assert REFUSAL in answer and "Bạn góp bao nhiêu?" in answer
    assert "Khi nào bạn góp?" in await chat.say("500k")  # the draft went on


FORGED = [
    "review:list",
    "review:more:registered:1",
    "review:ok:{gift}",
    "review:no:{gift}",
    "review:done:{gift}",
    "camp:kind:money",
    "camp:kinds",
    "camp:ok",
    f"ann:scope:commune:{CHO_DON}",
    "ann:now",
    "ann:go",
    "ann:progress",
    "poll:opts",
    "poll:kind",
    "poll:more",
    "poll:next",
    "poll:free",
    "poll:words:{gift}:0",
    "poll:scope:0",
    "poll:province",
    "poll:res:after_vote",
    "poll:ok",
    "report:queue",
    "report:recv:{gift}",
    "report:work:{gift}",
    "report:end:{gift}:declined",
    "proj:vil:0",
    "proj:camp:0",
    "proj:camps",
    "proj:ok",
    "projup:pick:{gift}",
    "projup:st:building",
    "projup:ok",
    "upload:ok",
    "report:spam:{gift}",
    "report:spamok:{gift}",
    "report:spamno",
    "report:move:{gift}",
    "report:more:new:{gift}",
]


def test_the_forged_buttons_are_every_official_button() -> None:
    router = root()
    pressed = [router.find_button(b.format(gift=1)) for b in FORGED]
    assert {f[0] for f in pressed if f is not None} == router.official_buttons


@pytest.mark.parametrize("button", FORGED)
async def test_a_villager_pressing_an_official_button_is_refused_and_nothing_changes(
    dispatcher: Dispatcher, services: Services, button: str
) -> None:
    gift = await pledged(Chat(dispatcher, "telegram", "v1"), services)
    villager = Chat(dispatcher, "telegram", "v2")
    await onboard(villager)
    before = await world(services)
    assert await villager.press_unoffered(button.format(gift=gift)) == REFUSAL
    assert await world(services) == before
    assert await state_of(villager) is None


# --- a grant revoked in the middle of a flow stops it at the next update --------------------


async def stopped(official: Chat, answer: str, before: dict[str, Any]) -> None:
    """Refused, out of the flow (its draft gone), and nothing recorded."""
    services = official.dispatcher.services
    assert REFUSAL in answer
    assert await state_of(official) is None
    assert await world(services) == before
    assert REFUSAL not in await official.say("/trogiup")  # a villager again, not stuck


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_revoked_reviewer_is_stopped_at_the_reason(
    dispatcher: Dispatcher, services: Services, channel: str
) -> None:
    gift = await pledged(Chat(dispatcher, "telegram", "v1"), services)
    official = await official_of(services, dispatcher, channel)
    await official.say("/duyet")
    assert "Lý do từ chối" in await official.press(f"review:no:{gift}")
    await revoke(official)
    before = await world(services)
    await stopped(official, await official.say("Trùng với đăng ký hôm qua"), before)


@pytest.mark.parametrize("channel", CHANNELS)
async def test_a_revoked_reviewer_cannot_press_the_cards_still_shown(
    dispatcher: Dispatcher, services: Services, channel: str
) -> None:
    gift = await pledged(Chat(dispatcher, "telegram", "v1"), services)
    official = await official_of(services, dispatcher, channel)
    await official.say("/duyet")
    await revoke(official)
    before = await world(services)
    assert REFUSAL in await official.press(f"review:ok:{gift}")
    assert await world(services) == before


CAMPAIGN_STEPS: list[tuple[str, Callable[[Chat], Awaitable[str]]]] = [
    ("camp:name", lambda chat: chat.say("Nhà văn hóa bản Cuôn")),
    ("camp:kinds", lambda chat: chat.press("camp:kind:money")),
    ("camp:targets", lambda chat: chat.say("200 triệu")),
    ("camp:end", lambda chat: chat.say("bỏ qua")),
    ("camp:ok", lambda chat: chat.say("đúng")),
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("at", [name for name, _answer in CAMPAIGN_STEPS])
async def test_a_revoked_official_is_stopped_at_every_step_of_a_campaign(
    dispatcher: Dispatcher, services: Services, channel: str, at: str
) -> None:
    official = await official_of(services, dispatcher, channel, NA_RI)
    await official.say("/taophongtrao")
    for name, answer in CAMPAIGN_STEPS:
        if name == at:
            break
        await answer(official)
        if name == "camp:kinds":
            await official.press("camp:kinds")
    assert await state_of(official) == at
    await revoke(official, NA_RI)
    before = await world(services)
    await stopped(official, await dict(CAMPAIGN_STEPS)[at](official), before)


ANNOUNCEMENT_STEPS: list[tuple[str, Callable[[Chat], Awaitable[str]]]] = [
    ("ann:text", lambda chat: chat.say("Họp thôn tối nay")),
    ("ann:scope", lambda chat: chat.press(f"ann:scope:commune:{CHO_DON}")),
    ("ann:when", lambda chat: chat.say("18:00 30/11")),
    ("ann:confirm", lambda chat: chat.press("ann:go")),
]


@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("at", [name for name, _answer in ANNOUNCEMENT_STEPS])
async def test_a_revoked_official_is_stopped_at_every_step_of_an_announcement(
    dispatcher: Dispatcher, services: Services, channel: str, at: str
) -> None:
    official = await official_of(services, dispatcher, channel)
    await official.say("/thongbaomoi")
    for name, answer in ANNOUNCEMENT_STEPS:
        if name == at:
            break
        await answer(official)
    assert await state_of(official) == at
    await revoke(official)
    before = await world(services)
    await stopped(official, await dict(ANNOUNCEMENT_STEPS)[at](official), before)


async def test_a_revoked_official_sending_a_photo_is_stopped(
    dispatcher: Dispatcher, services: Services
) -> None:
    official = await official_of(services, dispatcher, "telegram")
    await official.say("/thongbaomoi")
    await revoke(official)
    before = await world(services)
    photo = Incoming("telegram", "cb", unsupported="photo", photo="FILE1", text="Ảnh công trình")
    await stopped(official, await official.send(photo), before)


async def test_going_back_to_a_paused_flow_checks_the_grant_again(
    dispatcher: Dispatcher, services: Services
) -> None:
    """Typed "hủy" inside a flow asks first; by the time the official says "Tiếp tục", the
    grant may be gone, and the flow does not come back."""
    official = await official_of(services, dispatcher, "telegram", NA_RI)
    await official.say("/taophongtrao")
    await official.say("Nhà văn hóa bản Cuôn")
    assert "Bạn muốn hủy việc đang làm?" in await official.say("hủy")
    await revoke(official, NA_RI)
    before = await world(services)
    await stopped(official, await official.press("menu:back"), before)


# --- where an official may act --------------------------------------------------------------


@pytest.mark.parametrize("button", ["review:ok:{gift}", "review:no:{gift}", "review:done:{gift}"])
async def test_a_commune_official_cannot_act_on_another_communes_contribution(
    dispatcher: Dispatcher, services: Services, button: str
) -> None:
    gift = await pledged(Chat(dispatcher, "telegram", "v1"), services)
    [mine] = await services.contributions.of_user("telegram", "v1")
    other = await official_of(services, dispatcher, "telegram", NA_RI)
    assert mine.ref not in await other.say("/duyet")  # only Na Rì's are listed
    before = await world(services)
    assert REFUSAL in await other.press_unoffered(button.format(gift=gift))
    assert await world(services) == before
    assert await state_of(other) is None  # no reason asked for a refusal it may not make
    # Chợ Đồn's official may.
    here = await official_of(services, dispatcher, "zalo", CHO_DON)
    await here.say("/duyet")
    assert REFUSAL not in await here.press(button.format(gift=gift))


async def test_the_official_is_resolved_once_per_update_and_never_for_villagers(
    dispatcher: Dispatcher, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside an official step, a press is checked as the step's and as the button's: one
    read of the grants between them; a villager's messages read none."""
    reads: list[str | None] = []
    store = services.officials
    read = store.grants

    async def counted(principal: str | None = None) -> list[Grant]:
        reads.append(principal)
        return await read(principal)

    monkeypatch.setattr(store, "grants", counted)
    official = await official_of(services, dispatcher, "telegram", NA_RI)
    await official.say("/taophongtrao")
    await official.say("Nhà văn hóa bản Cuôn")
    reads.clear()
    await official.press("camp:kind:money")
    assert reads == ["telegram:cb"]
    villager = Chat(dispatcher, "telegram", "v1")
    reads.clear()
    await onboard(villager)
    await villager.say("/tiendo")
    await villager.say("/dongop")
    assert reads == []


async def test_the_official_is_typed_by_its_widest_grant(services: Services) -> None:
    store, reference = services.officials, services.reference
    everywhere = list(reference.communes)
    await store.grant("telegram:1", "commune_official", CHO_DON, "t")
    await store.grant("telegram:2", "province_official", reference.province_code, "t")
    await store.grant("telegram:2", "commune_official", NA_RI, "t")
    await store.grant("telegram:3", "admin", reference.province_code, "t")
    await store.grant("telegram:4", "province_official", "01", "t")  # another province's

    async def official(who: str) -> Any:
        return await store.official(who, reference.province_code, everywhere)

    commune = await official("telegram:1")
    assert (commune.role, commune.communes, commune.whole_province) == (
        "commune_official",
        (CHO_DON,),
        False,
    )
    assert commune.covers(CHO_DON) and not commune.covers(NA_RI)
    province = await official("telegram:2")
    assert province.role == "province_official" and province.communes == tuple(everywhere)
    assert (await official("telegram:3")).role == "admin"
    assert await official("telegram:4") is None
    assert await official("telegram:9") is None


@pytest.mark.parametrize("button", FORGED)
async def test_an_official_pressing_a_button_outside_its_flow_gets_no_apology(
    dispatcher: Dispatcher, services: Services, button: str
) -> None:
    """An old message's button, pressed after the flow ended: stale, never a crash."""
    gift = await pledged(Chat(dispatcher, "telegram", "v1"), services)
    official = await official_of(services, dispatcher, "telegram")
    answer = await official.press_unoffered(button.format(gift=gift))
    assert "Xin lỗi, hệ thống đang gặp sự cố" not in answer and REFUSAL not in answer
