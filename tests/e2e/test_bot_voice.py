"""Issue 20, item 8, on a real Synapse: the bot keeps its voice.

Synapse applies its default message rate limit to server admins too. At start the bot lifts its
own (override_ratelimit 0/0) unless `rate_limits.exempt_bot: false`, and `check` says which.
"""

from __future__ import annotations

import io
from pathlib import Path

import httpx

from bot.cli import check
from bot.demo.run import build_world, running_bot
from bot.demo.synapse import LocalHomeserver


async def _override(homeserver: LocalHomeserver, token: str, user_id: str) -> dict:
    async with httpx.AsyncClient(base_url=homeserver.url, headers={"Authorization": f"Bearer {token}"}) as http:
        response = await http.get(f"/_synapse/admin/v1/users/{user_id}/override_ratelimit")
        response.raise_for_status()
        return dict(response.json())


async def test_the_bot_lifts_its_own_rate_limit_at_start_unless_told_not_to(
        homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world = await build_world(homeserver, tmp_root / "voicebot", bot_localpart="voicebot", moderator_localpart="voice-admin")
    world.roles = {"admins": [world.moderator.user_id]}
    bot_id, token = world.bot.user_id, world.bot.access_token
    try:
        out = io.StringIO()
        assert await check(world.config(), out=out) == 0, out.getvalue()
        assert "bot's message rate limit is not lifted yet: the bot lifts it when it starts" in out.getvalue()

        # Told not to: the homeserver's limit stays, and `check` says why.
        kept = world.config(rate_limits={"exempt_bot": False})
        async with running_bot(kept) as app:
            await app.ready()  # the start's deferred work is done
        assert await _override(homeserver, token, bot_id) == {}
        out = io.StringIO()
        assert await check(kept, out=out) == 0, out.getvalue()
        assert "rate_limits.exempt_bot is false, so the bot leaves it as it is" in out.getvalue()

        async with running_bot(world.config()) as app:
            await app.ready()
        assert await _override(homeserver, token, bot_id) == {"messages_per_second": 0, "burst_count": 0}
        out = io.StringIO()
        assert await check(world.config(), out=out) == 0, out.getvalue()
        assert "bot's message rate limit is lifted (override_ratelimit 0/0" in out.getvalue()
    finally:
        await world.chat.close()
