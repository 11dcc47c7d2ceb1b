"""A report flood on the real Synapse, with a restart of the bot in the middle of it: each report is
recorded once in the queue, the notices come grouped (summaries, not one notice per report),
nothing is posted twice, and a report folded into a summary can be shown, claimed and resolved."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.demo.run import running_bot
from bot.demo.synapse import LocalHomeserver
from tests.conftest import make_world
from tests.support.chat import body
from tests.support.reports import is_notice_from, make_scene

pytestmark = pytest.mark.slow  # scheduled first (tests/conftest.py)

REPORTS = 150
AT_ONCE = 10  # reports filed concurrently: a flood, not a trickle
_SUMMARY = re.compile(r"📥 (\d+) (?:new reports at once|reports arrived while the bot was away)")
_SINGLE = re.compile(r"(?:Event|User) report (u?\d+) · ")


async def test_a_flood_with_a_restart_in_the_middle_is_recorded_once_posted_once_and_actionable(
        homeserver: LocalHomeserver, tmp_root: Path) -> None:
    world, people = await make_world(homeserver, tmp_root, "floodbot")
    admin, mod = people["admin"], people["mod"]
    config = world.config(reports={"poll_interval": 0.3})
    scene = await make_scene(homeserver, "flood")
    reasons = [f"flood report {i:03d}" for i in range(REPORTS)]

    async def file(batch: list[str]) -> None:
        for start in range(0, len(batch), AT_ONCE):
            await asyncio.gather(*(scene.report_event(r) if i % 3 else scene.report_user(r)
                                   for i, r in enumerate(batch[start:start + AT_ONCE], start)))

    try:
        async with running_bot(config, report_page_size=50) as app:
            await admin.chat.wait_for(admin.room_id, lambda e: "Report inbox started" in body(e))
            await file(reasons[:REPORTS // 2])
            for _ in range(200):  # stop the bot once it has recorded some of them, mid-flood
                if len(await app.stores.reports.reports_by_post_state("summarised", limit=1000)) > 0:
                    break
                await asyncio.sleep(0.05)
            filing = asyncio.create_task(file(reasons[REPORTS // 2:]))  # the flood goes on over the restart
        async with running_bot(config, report_page_size=50) as app:
            await filing
            for _ in range(400):
                recorded = [r for r in await _all_reports(app) if r.facts.reason in reasons]
                if len(recorded) == REPORTS and all(r.post_state in ("posted", "summarised") for r in recorded):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # anything posted twice would arrive now

            # Recorded once each: one row per report in the queue, all posted.
            assert sorted(r.facts.reason for r in recorded) == sorted(reasons)
            assert all(r.post_state in ("posted", "summarised") for r in recorded)

            # Posted once each, grouped: the summaries' counts and the single notices add up to the
            # flood exactly (a report in two notices would make more), in a handful of messages.
            notices = [e for e in admin.chat.events.get(admin.room_id, []) if is_notice_from(e, world.bot.user_id)]
            summarised = [int(m.group(1)) for e in notices if (m := _SUMMARY.search(body(e)))]
            singles = [m.group(1) for e in notices if (m := _SINGLE.search(body(e))) and "flood report" in body(e)]
            assert sum(summarised) + len(singles) == REPORTS, (summarised, singles)
            assert len(set(singles)) == len(singles)
            assert len(summarised) + len(singles) <= 25, (summarised, singles)

            # A report folded into a summary is shown, claimed and resolved by its id.
            folded = next(r for r in recorded if r.post_state == "summarised")
            label = ("u" if folded.facts.kind == "user" else "") + str(folded.facts.report_id)
            assert folded.facts.reason in await mod.ask_body(f"!admin report show {label}")
            assert "claimed" in await mod.ask_body(f"!admin report claim {label}")
            assert "resolved" in await mod.ask_body(f"!admin report resolve {label} handled in the flood")
            assert (await app.stores.reports.get_report(folded.facts.kind, folded.facts.report_id)).state == "resolved"
    finally:
        await scene.close()
        for person in people.values():
            await person.chat.close()


async def _all_reports(app):
    found = []
    for state in ("pending", "pending_summary", "posted", "summarised", "failed"):
        found += await app.stores.reports.reports_by_post_state(state, limit=10_000)
    found += await app.stores.reports.reports_in_batches("batch:")
    return found
