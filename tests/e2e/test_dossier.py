"""`user dossier` on the real homeserver: a reported, shadow-banned user's dossier shows both
reports against them, their rooms and the team's action, in the fixed order of sections."""

from __future__ import annotations

import re

from bot.app import App
from bot.demo.run import TINY_PNG, World
from bot.demo.synapse import LocalHomeserver
from tests.support.chat import Person, body, code_of
from tests.support.reports import make_scene, unique


async def test_dossier_of_a_reported_shadow_banned_user(
        mod: Person, bot: App, world: World, homeserver: LocalHomeserver) -> None:
    scene = await make_scene(homeserver, "dossier", text="Cheap followers here")
    try:
        offender = scene.offender.user_id
        event_reason, user_reason = unique("spam in the room"), unique("spam account")
        await scene.report_event(event_reason)
        await scene.report_user(user_reason)
        await scene.offender.upload(TINY_PNG, "image/png")
        prompt = await mod.ask(f"!admin user shadow-ban {offender}")
        assert "shadow-banned" in await mod.ask_body(f"!admin confirm {code_of(prompt)}")
        events = await bot.api.list_event_reports(reported_user=offender, limit=10)
        users = await bot.api.list_user_reports(target_user_id=offender, limit=10)
        event_id, user_id = events.items[0].id, users.items[0].id

        reply = await mod.ask(f"!admin user dossier {offender}")
        text = body(reply)
        # One reply, the sections in their order, each with the command that digs deeper.
        order = [text.index(f"{n}. ") for n in range(1, 7)]
        assert order == sorted(order), text
        for more in (f"!admin user info {offender}", f"!admin reports list --all --reported {offender}",
                     f"!admin user rooms {offender}", f"!admin user media {offender}", f"!admin user whois {offender}",
                     f"!admin audit --about {offender}"):
            assert more in text, (more, text)
        account = text[order[0]:order[1]]
        assert "shadow-banned" in account and "created" in account
        reports = text[order[1]:order[2]]
        assert re.search(rf"\b{event_id}\b", reports) and f"u{user_id}" in reports, reports
        assert event_reason in reports and user_reason in reports
        assert f"Reports against {offender}: 2 (" in reports
        rooms = text[order[2]:order[3]]
        assert scene.room_id in rooms and "Room <i>dossier</i>" in rooms and "yes" in rooms  # they created it
        media = text[order[3]:order[4]]
        assert "1 files, 67 bytes in all; 0 quarantined" in media
        team = text[order[5]:]
        assert "user shadow-ban" in team and mod.user_id in team
        html = reply["content"]["formatted_body"]
        assert "<i>dossier</i>" not in html and "&lt;i&gt;dossier&lt;/i&gt;" in html  # a stranger's room name, escaped
    finally:
        await scene.close()


async def test_dossier_of_a_remote_user_shows_what_the_bot_knows(mod: Person) -> None:
    text = await mod.ask_body("!admin user dossier @someone:elsewhere.example")
    assert "1. Account: — (not an account of this homeserver)" in text
    assert "Reports against @someone:elsewhere.example: 0 (" in text
    assert "What the team did to @someone:elsewhere.example: 0 actions" in text


async def test_a_viewer_may_not_read_a_dossier(viewer: Person) -> None:
    assert "needs the moderator role" in await viewer.ask_body("!admin user dossier @someone:elsewhere.example")
