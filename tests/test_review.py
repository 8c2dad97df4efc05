"""Officials review contributions: new pledges first, page by page, and every button names the
contribution it acts on, however the list has moved since it was drawn."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.app.services import Services
from bot.core.dispatch import Dispatcher
from bot.storage.contributions import NewContribution
from bot.storage.schema import contributions
from tests.conftest import Chat


async def onboard(chat: Chat) -> None:
    await chat.say("/start")
    await chat.press("lang:vi")
    await chat.say("cho don")


async def pledge(villager: Chat, amount: str, when: str | None = None) -> None:
    """Money to the sample road of Nà Làng, by buttons; on a day when `when` is given."""
    await villager.say("/dongop")
    await villager.press("contrib:vil:0")
    await villager.press("contrib:kind:money")
    await villager.say(amount)
    if when is None:
        await villager.press("contrib:when:now")
    else:
        await villager.say(when)
    await villager.press("contrib:public:no")
    await villager.press(next(b for b in villager.buttons if b.startswith("contrib:ok:")))


@pytest.fixture
async def official(services: Services, dispatcher: Dispatcher) -> Chat:
    await services.officials.grant("telegram:cb", "commune_official", "02020", "test")
    return Chat(dispatcher, "telegram", "cb")


async def waiting(services: Services) -> list[tuple[int, str]]:
    """(id, status) of what waits for Chợ Đồn's officials, read from the table itself."""
    async with services.db.read() as conn:
        rows = await conn.execute(
            select(contributions.c.id, contributions.c.status)
            .where(
                contributions.c.commune_code == "02020",
                contributions.c.status.in_(("registered", "confirmed")),
            )
            .order_by(contributions.c.id)
        )
        return [(r.id, r.status) for r in rows]


def ids(chat: Chat) -> list[int]:
    """The contributions on the cards shown, in order (each card has a "done" button)."""
    return [int(b.rsplit(":", 1)[1]) for b in chat.buttons if b.startswith("review:done:")]


async def confirmed_gifts(services: Services, n: int) -> None:
    """n households whose money the official has confirmed, waiting to be marked done."""
    campaign = await services.campaigns.by_slug("mau-duong-thon-na-lang")
    assert campaign is not None
    for number in range(n):
        gift, _new = await services.contributions.add(
            NewContribution(
                campaign=campaign,
                village="Nà Làng",
                channel="sample",
                user_id=f"extra-{number}",
                display_name=None,
                show_name=False,
                kind="money",
                amount=100_000 * (number + 1),
                unit=None,
                description=None,
                due_on=None,
                source_key=f"extra:{number}",
            )
        )
        await services.contributions.move(gift.id, "confirmed", "test")


async def pages(official: Chat, first: str) -> list[list[int]]:
    """The contribution ids on each page, following "Trang sau" to the end."""
    shown, answer = [], first
    while True:
        shown.append(ids(official))
        more = [b for b in official.buttons if b.startswith("review:more:")]
        if not more:
            assert "Trang sau" not in answer
            return shown
        assert official.label(more[0]) == "Trang sau"
        answer = await official.press(more[0])


async def test_a_new_pledge_is_on_the_first_page_however_many_wait_to_be_done(
    chat: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    await confirmed_gifts(services, 10)  # and the sample's 5: 15 confirmed in Chợ Đồn
    confirmed = await waiting(services)
    assert [status for _id, status in confirmed] == ["confirmed"] * 15
    villager = Chat(dispatcher, "telegram", "new-1")
    await onboard(villager)
    await pledge(villager, "1,5 triệu", "15/12")
    [new] = await services.contributions.of_user("telegram", "new-1")

    official = f"{chat.channel}:{chat.user_id}"  # the official on each channel
    await services.officials.grant(official, "commune_official", "02020", "test")
    first = await chat.say("/duyet")
    assert first.startswith("Đóng góp đang chờ duyệt:")
    assert f"{new.ref} · Xã Chợ Đồn · Nà Làng" in first
    lines = first.splitlines()
    top = lines.index(f"{new.ref} · Xã Chợ Đồn · Nà Làng")
    assert lines[top + 1 : top + 4] == [
        "Bê tông hóa đường thôn Nà Làng (mẫu)",
        "Một hộ dân: 1.500.000 đồng",
        "Hẹn ngày: 15/12/2026",
    ]
    assert chat.buttons[:3] == [
        f"review:ok:{new.id}",
        f"review:no:{new.id}",
        f"review:done:{new.id}",
    ]
    assert "Còn 11 đóng góp nữa." in first
    shown = await pages(chat, first)
    assert [len(page) for page in shown] == [5, 5, 5, 1]
    everyone = [i for page in shown for i in page]
    assert everyone == [new.id, *(i for i, _status in confirmed)]  # each once, oldest first


async def test_buttons_keep_their_meaning_when_the_list_moves(
    dispatcher: Dispatcher, official: Chat, services: Services
) -> None:
    """A card's buttons name its contribution, not a place in the list; the next page starts
    after the last card shown, so one handled meanwhile makes it skip none."""
    villager = Chat(dispatcher, "telegram", "move-1")
    await onboard(villager)
    for amount in ("100 nghìn", "200 nghìn", "300 nghìn"):
        await pledge(villager, amount)
    a, b, c = sorted(await services.contributions.of_user("telegram", "move-1"), key=lambda x: x.id)
    sample = [i for i, status in await waiting(services) if status == "confirmed"]
    await official.say("/duyet")
    old = official.buttons
    assert old[:3] == [f"review:ok:{a.id}", f"review:no:{a.id}", f"review:done:{a.id}"]
    [more] = [i for i in old if i.startswith("review:more:")]
    assert f"Đã xác nhận {a.ref}." in await official.press(f"review:ok:{a.id}")
    await official.say("/duyet")  # redrawn: b is first now
    assert official.buttons[0] == f"review:ok:{b.id}"
    # The old message's button for c (third then, second now) still means c.
    assert f"Đã xác nhận {c.ref}." in await official.press_unoffered(f"review:ok:{c.id}")
    assert (await services.contributions.get(b.id)).status == "registered"  # type: ignore[union-attr]
    # The old "Trang sau": the page after the last card shown then, a now among the confirmed.
    await official.press_unoffered(more)
    assert ids(official) == [*sample[2:], a.id, c.id]


@pytest.mark.parametrize("typed", ["Xác nhận", "xac nhan", "đã hoàn thành", "hoàn thành"])
async def test_a_label_under_every_card_names_none_of_them(
    chat: Chat, dispatcher: Dispatcher, services: Services, typed: str
) -> None:
    """Typed, "Xác nhận" would otherwise confirm whichever card the list happens to show first."""
    villager = Chat(dispatcher, "telegram", "label-1")
    await onboard(villager)
    for amount in ("100 nghìn", "200 nghìn"):
        await pledge(villager, amount)
    await services.officials.grant(
        f"{chat.channel}:{chat.user_id}", "commune_official", "02020", "test"
    )
    await chat.say("/duyet")
    assert [chat.label(b) for b in chat.buttons].count("Xác nhận") == 2
    before = await waiting(services)
    answer = await chat.say(typed)
    assert "Đã xác nhận" not in answer and "Đã ghi hoàn thành" not in answer
    assert await waiting(services) == before


async def test_confirmed_ones_are_headed_as_waiting_to_be_done_not_as_pending(
    official: Chat, dispatcher: Dispatcher, services: Services
) -> None:
    """Page 2 of /duyet was headed "đang chờ duyệt" and listed contributions already
    confirmed."""
    villager = Chat(dispatcher, "telegram", "new-2")
    await onboard(villager)
    await pledge(villager, "1,5 triệu", "15/12")
    first = await official.say("/duyet")
    lines = first.splitlines()
    assert lines[0] == "Đóng góp đang chờ duyệt:"
    assert "Đã xác nhận, chờ ghi hoàn thành:" in lines  # the sample's confirmed ones after it
    assert lines.index("Đã xác nhận, chờ ghi hoàn thành:") > 1
    while more := [b for b in official.buttons if b.startswith("review:more:")]:
        page = await official.press(more[0])
        assert page.startswith("Đã xác nhận, chờ ghi hoàn thành:")
        assert "Đóng góp đang chờ duyệt:" not in page
