from tests.conftest import Chat


async def test_start_then_commune(chat: Chat) -> None:
    assert "Chung Sức" in await chat.say("/start")
    assert chat.buttons == ["lang:vi", "lang:en"]
    assert "xã, phường nào" in await chat.press("lang:vi")
    assert "Xã Chợ Đồn" in await chat.say("cho don")
