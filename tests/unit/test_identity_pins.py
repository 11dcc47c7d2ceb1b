"""Pinned cross-signing identities in the dispatcher (bot/runtime/identities.py), with the fake
Matrix layer of test_dispatcher_hostile: what the e2e test (tests/e2e/test_identity_pins.py)
cannot reach on a real server — the owner approving their own identity from where their words do
reach the bot (an unencrypted admin room), and the switches."""

from __future__ import annotations

from typing import Any

from tests.unit.test_dispatcher_hostile import ADMIN, Bot, bot  # noqa: F401 (the fixture)

OLD, NEW = "A" * 43, "B" * 43


def _signed(identity: str) -> dict[str, Any]:
    return {"encrypted": True, "sender_device": "DEV", "sender_device_trusted": True, "sender_identity": identity}


async def _warnings(bot: Bot) -> list[str]:
    return [c["body"] for c in bot.room.contents if "cross-signing identity of" in c.get("body", "")]


async def test_a_changed_identity_is_refused_and_warned_once_until_another_admin_approves(bot: Bot) -> None:
    bot.dispatcher.intake.require_cross_signed_senders = True
    assert "Pinned cross-signing identities" in bot.answer(await bot.say("!admin identity list", **_signed(OLD)))
    pin = await bot.store.identities.get(ADMIN)
    assert pin is not None and pin.master_key == OLD and pin.pinned_by == "first sight"

    refused = await bot.say("!admin identity list", **_signed(NEW))
    assert "identity changed" in bot.answer(refused) and f"identity approve {ADMIN}" in bot.answer(refused)
    await bot.say("!admin identity list", **_signed(NEW))
    assert len(await _warnings(bot)) == 1  # the admin rooms hear of one change once
    assert (await bot.store.audit.audit_entries(limit=1))[0].detail == "cross-signing identity changed"

    # The owner, from an unencrypted admin room (no device, no identity to check): not their own.
    own = await bot.say(f"!admin identity approve {ADMIN}")
    assert "cannot approve their own identity" in bot.answer(own)
    assert (await bot.store.identities.get(ADMIN)).changed_key == NEW  # type: ignore[union-attr]

    # The console approves (where there is one admin).
    from bot.runtime.identities import CONSOLE, approve
    said = await approve(bot.store.identities, ADMIN, by=CONSOLE, now_ms=1)
    assert "Approved" in said
    listed = bot.answer(await bot.say("!admin identity list", **_signed(NEW)))
    assert "BBBB BBBB" in listed and "console" in listed and "refused until approved" not in listed


async def test_the_opt_outs_pin_nothing(bot: Bot) -> None:
    bot.dispatcher.intake.require_cross_signed_senders = False
    await bot.say("!admin identity list", **_signed(OLD))
    assert await bot.store.identities.get(ADMIN) is None
    bot.dispatcher.intake.require_cross_signed_senders = True
    bot.dispatcher.intake.pin_identities = False
    await bot.say("!admin identity list", **_signed(OLD))
    assert await bot.store.identities.get(ADMIN) is None
