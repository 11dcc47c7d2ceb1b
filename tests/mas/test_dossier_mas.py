"""`user dossier` with MAS configured: its last section lists the account's active MAS sessions
(compatibility, OAuth 2.0 and browser sessions), newest first, with the total; finished ones are left
out, and an account MAS does not know says so."""

from __future__ import annotations

from pathlib import Path

from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver
from tests.support.chat import Person
from tests.support.mas_standin import MASStandIn


async def test_the_dossier_lists_active_mas_sessions(homeserver: LocalHomeserver, tmp_root: Path, mas: MASStandIn) -> None:
    world = await build_world(homeserver, tmp_root / "masdossier", bot_localpart="masdossier",
                              moderator_localpart="masdossier-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    client = mas.add_client()
    target = await homeserver.register("masdossier-target")
    stranger = await homeserver.register("masdossier-unknown")
    user = mas.add_account(target, user_agent="Element Desktop")
    mas.add_browser_session(user, user_agent="Firefox", last_active_ip="192.0.2.77")
    mas.add_oauth2_session(user, user_agent=None, last_active_ip="192.0.2.88")
    mas.add_compat_session(user, user_agent="old phone", finished=True)
    config = world.config(mas={"url": mas.url, "client_id": client.id, "client_secret": client.secret})
    person = Person(world.chat, world.admin_room)
    try:
        await world.chat.start()
        async with running_bot(config):
            await world.chat.wait_for_join(world.admin_room, world.bot.user_id)
            text = await person.ask_body(f"!admin user dossier {target.user_id}")
            mas_part = text[text.index("7. Active MAS sessions"):]
            assert "7. Active MAS sessions: 3" in mas_part
            assert "Element Desktop" in mas_part and "Firefox" in mas_part and "192.0.2.77" in mas_part
            assert "192.0.2.88" in mas_part and "oauth2" in mas_part and "browser" in mas_part
            assert "old phone" not in mas_part  # finished
            assert text.index("6. What the team did") < text.index("7. Active MAS sessions")
            unknown = await person.ask_body(f"!admin user dossier {stranger.user_id}")
            assert f"7. MAS: matrix-authentication-service has no user for {stranger.user_id}." in unknown
    finally:
        await world.chat.close()
