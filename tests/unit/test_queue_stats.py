"""The queue in numbers (bot/inbox/stats.py, chart.py), its digest once per period (across a
restart), the schedule it keeps (bot/text/schedule.py), and the policy-list matcher on hostile
lists (bot/inbox/policy_lists.py)."""

from __future__ import annotations

import fnmatch
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bot.inbox.digests as digests_module
import bot.inbox.inbox as inbox_module
from bot.config import ConfigError, parse
from bot.inbox.chart import draw, png_size
from bot.inbox.inbox import DIGEST_KEY, ReportInbox
from bot.inbox.policy_lists import ENTITY_CHARS, MAX_HITS, REASON_CHARS, PolicyBook
from bot.inbox.stats import compute
from bot.inbox.views import NoticeContext, notice_view
from bot.records import ReportFacts, ReportRecord
from bot.state.db import Database
from bot.state.stores import Stores
from bot.text.render import render
from bot.text.schedule import Recurrence
from tests.unit.test_reports import FakeAPI, FakeMessenger

HOUR = 3_600_000
DAY = 24 * HOUR
LIST = "!list:hs"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp() * 1000)


def _record(report_id: int, ts: int, state: str = "open", *, kind: str = "event", target: str = "@t:hs",
            reporter: str = "@r:hs", room: str | None = "!room:hs", claimed: int | None = None,
            closed: int | None = None) -> ReportRecord:
    facts = ReportFacts(kind=kind, report_id=report_id, received_ts=ts, reporter=reporter, target=target,
                        room_id=room if kind == "event" else None, room_name="Room" if kind == "event" else None)
    return ReportRecord(facts=facts, state=state, claimed_by="@m:hs" if claimed else None, claimed_ts=claimed,
                        closed_by="@m:hs" if closed else None, closed_ts=closed, note=None, redacted_by=None,
                        redacted_ts=None, post_state="posted", updated_ts=ts)


# -- the numbers


def test_stats_count_by_kind_and_state_with_median_waits_and_tops() -> None:
    now = _ms("2026-12-07T12:00:00")
    records = [
        _record(1, now - 2 * HOUR, "claimed", claimed=now - HOUR),  # waited 1 h to be claimed
        _record(2, now - DAY, "resolved", claimed=now - DAY + 3 * HOUR, closed=now - DAY + 4 * HOUR, target="@spam:hs"),
        _record(3, now - DAY, "resolved", closed=now - DAY + 2 * HOUR, target="@spam:hs", reporter="@eager:hs"),
        _record(4, now - 3 * DAY, "dismissed", closed=now - 3 * DAY + HOUR, kind="user", target="@spam:hs",
                reporter="@eager:hs"),
        _record(5, now - 3 * DAY, reporter="@eager:hs"),
        _record(6, now - 9 * DAY),  # outside the window
    ]
    stats = compute(records, days=7, now_ms=now)
    assert stats.total == 5
    assert stats.by_kind == {"event": 4, "user": 1}
    assert stats.by_state == {"open": 1, "claimed": 1, "resolved": 2, "dismissed": 1}
    assert (stats.median_claim_ms, stats.claimed_count) == (2 * HOUR, 2)  # 1 h and 3 h
    assert (stats.median_resolve_ms, stats.resolved_count) == (3 * HOUR, 2)  # 2 h and 4 h
    assert stats.top_reported[0] == ("@spam:hs", 3)
    assert stats.top_reporters[0] == ("@eager:hs", 3)
    assert stats.top_rooms == [("!room:hs", "Room", 4)]
    days = dict(stats.per_day)
    assert len(stats.per_day) == 7 and stats.per_day[-1][0] == "2026-12-07"
    assert days["2026-12-07"]["claimed"] == 1 and days["2026-12-06"]["resolved"] == 2
    assert days["2026-12-04"] == {"open": 1, "claimed": 0, "resolved": 0, "dismissed": 1}


def test_the_chart_is_a_png_of_the_stated_size(tmp_path: Path) -> None:
    now = _ms("2026-12-07T12:00:00")
    stats = compute([_record(i, now - (i % 7) * DAY, ("open", "resolved")[i % 2], closed=now) for i in range(30)],
                    days=7, now_ms=now)
    chart = draw(stats)
    try:
        data = Path(chart.path).read_bytes()
        assert png_size(data) == (chart.width, chart.height) == (800, 400)
        assert chart.size == len(data)
        assert "30 in all" in chart.alt and "12-07:" in chart.alt
    finally:
        Path(chart.path).unlink()


# -- the schedule and the digest


def test_schedules_parse_and_find_their_latest_moment() -> None:
    weekly = Recurrence.parse("weekly mon 09:00")
    assert weekly.latest(_ms("2026-12-07T09:00:00")) == _ms("2026-12-07T09:00:00")  # a Monday
    assert weekly.latest(_ms("2026-12-07T08:59:00")) == _ms("2026-11-30T09:00:00")
    assert weekly.latest(_ms("2026-12-13T23:00:00")) == _ms("2026-12-07T09:00:00")
    daily = Recurrence.parse("Daily 18:30")
    assert daily.latest(_ms("2026-12-07T18:00:00")) == _ms("2026-12-06T18:30:00")
    assert str(daily) == "daily 18:30 UTC"
    for bad in ("weekly 09:00", "monthly 1 09:00", "daily 24:00", "weekly xyz 09:00", "daily 9"):
        with pytest.raises(ValueError):
            Recurrence.parse(bad)


def _config(**extra: Any) -> Any:
    data = {"homeserver": {"url": "http://127.0.0.1:8008"}, "bot": {"user_id": "@bot:hs", "access_token": "t"},
            "admin_rooms": ["!a:hs"], "access": {"admins": ["@a:hs"]}, **extra}
    return parse(data, base_dir=Path("/tmp"), environ={})


def test_the_config_names_the_key_of_a_bad_digest_or_policy_list() -> None:
    assert _config(reports={"digest": "weekly mon 09:00"}).reports.digest == Recurrence(0, 9, 0)
    assert _config().reports.digest is None and _config().policy_lists == ()
    with pytest.raises(ConfigError, match="reports.digest"):
        _config(reports={"digest": "every monday"})
    with pytest.raises(ConfigError, match=r"policy_lists\[0\].*admin room"):
        _config(policy_lists=["!a:hs"])
    with pytest.raises(ConfigError, match=r"policy_lists\[1\]"):
        _config(policy_lists=["#rules:hs", "rules"])
    assert _config(policy_lists=["#rules:hs"]).policy_lists == ("#rules:hs",)


async def test_the_digest_goes_out_once_per_period_even_across_a_restart(tmp_path: Path, monkeypatch: Any) -> None:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    files: list[tuple[str, dict[str, Any], tuple[int, int]]] = []

    class Messenger(FakeMessenger):
        async def send_file(self, room_id: str, *, path: str, image: dict[str, Any], **_: Any) -> str:
            files.append((room_id, image, png_size(Path(path).read_bytes())))
            return "$file"

    messenger = Messenger()
    clock = {"now": _ms("2026-12-07T09:00:30")}  # Monday, just after the digest's moment
    monkeypatch.setattr(inbox_module, "now_ms", lambda: clock["now"])
    monkeypatch.setattr(digests_module, "now_ms", lambda: clock["now"])

    def inbox() -> ReportInbox:
        return ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=["!a:hs", "!b:hs"],
                           digest=Recurrence.parse("weekly mon 09:00"))

    await store.reports.add_report(ReportFacts(kind="user", report_id=1, received_ts=clock["now"] - HOUR, reporter="@r:hs",
                                       target="@spam:hs"))
    first = inbox()
    assert await first.digests.digest_if_due()
    assert [room for room, _, _ in messenger.sent] == ["!a:hs", "!b:hs"]
    assert "Weekly report digest" in messenger.sent[0][1]["body"] and "@spam:hs" in messenger.sent[0][1]["body"]
    assert [(room, (image["w"], image["h"]), size) for room, image, size in files] == [
        ("!a:hs", (800, 400), (800, 400)), ("!b:hs", (800, 400), (800, 400))]
    assert "1 in all" in files[0][1]["body"]
    clock["now"] += HOUR
    assert not await first.digests.digest_if_due()
    assert not await inbox().digests.digest_if_due()  # a restart inside the period: nothing again
    assert len(messenger.sent) == 2 and await store.meta.get_meta(DIGEST_KEY) == str(_ms("2026-12-07T09:00:00"))
    clock["now"] = _ms("2026-12-14T09:00:00")  # the next Monday
    assert await inbox().digests.digest_if_due() and len(messenger.sent) == 4 and len(files) == 4
    assert not await inbox().digests.digest_if_due()
    assert not await ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=messenger,
                               admin_rooms=["!a:hs"]).digests.digest_if_due()
    await db.close()


# -- policy lists


def _rule(kind: str, entity: str, reason: str = "spam", *, key: str | None = None, etype: str | None = None,
          recommendation: str = "m.ban") -> dict[str, Any]:
    return {"type": etype or f"m.policy.rule.{kind}", "state_key": key or f"{kind}:{entity}",
            "content": {"entity": entity, "recommendation": recommendation, "reason": reason}}


def test_rules_match_users_their_servers_and_rooms_by_glob() -> None:
    book = PolicyBook([LIST])
    book.update(LIST, [
        {"type": "m.room.name", "state_key": "", "content": {"name": "Community bans"}},
        _rule("user", "@spammer:evil.org", "known spammer"),
        _rule("server", "*.EVIL.org", "spam server"),
        _rule("room", "!bad?:hs", "spam room", etype="org.matrix.mjolnir.rule.room"),
        _rule("user", "@bot*:*", "bots", etype="m.room.rule.user"),
        _rule("user", "@nice:hs", "only a warning", recommendation="m.warn"),
    ])
    hits = book.match(user="@spammer:evil.org", rooms=["!bad1:hs"])
    assert [(h.rule.kind, h.rule.entity, h.matched) for h in hits] == [
        ("user", "@spammer:evil.org", "@spammer:evil.org"), ("room", "!bad?:hs", "!bad1:hs")]
    assert hits[0].list_name == "Community bans" and hits[0].rule.reason == "known spammer"
    assert [h.rule.entity for h in book.match(user="@x:mx.Evil.org")] == ["*.EVIL.org"]  # servers ignore case
    assert [h.rule.entity for h in book.match(user="@bot7:any.org")] == ["@bot*:*"]
    assert book.match(user="@nice:hs") == [] and book.match(user="@x:evil.org") == []
    assert book.match(rooms=["!bad12:hs"]) == []  # ? is exactly one character
    # A rule removed (its state emptied) or changed is seen at once.
    assert book.update(LIST, [{"type": "m.policy.rule.user", "state_key": "user:@spammer:evil.org", "content": {}}]) == 1
    assert book.match(user="@spammer:evil.org") == []


def test_hostile_lists_are_bounded_in_size_text_and_time() -> None:
    book = PolicyBook([LIST])
    huge = "line one\nline two " + "x" * 100_000
    events = [_rule("user", "*a" * 40 + "*b", huge, key="cat1"), _rule("user", "*?" * 60 + "x", key="cat2"),
              _rule("user", "@" + "a" * ENTITY_CHARS + ":hs", key="long"),
              *(_rule("user", "*", f"all {i}", key=f"all{i}") for i in range(100))]
    book.update(LIST, events)
    rule = next(r for r in book._lists[LIST].rules.values() if r.entity.endswith("*b"))
    assert len(rule.reason) <= REASON_CHARS and "\n" not in rule.reason
    assert all(len(r.entity) <= ENTITY_CHARS for r in book._lists[LIST].rules.values())  # the long one is left out
    name = "@" + "a" * 240 + ":hs"
    started = time.perf_counter()
    hits = book.match(user=name, rooms=["!" + "?" * 200])
    took = time.perf_counter() - started
    assert len(hits) == MAX_HITS  # everything matches "*": the first MAX_HITS, not all
    assert took < 0.5, took
    # The catastrophic globs on their own: as fnmatch says, in bounded time.
    alone = PolicyBook([LIST])
    alone.update(LIST, events[:2])
    for text in (name, "a" * 200 + "b", "?" * 200 + "x", "?" * 200):
        started = time.perf_counter()
        found = {h.rule.entity for h in alone.match(user=text)}
        assert time.perf_counter() - started < 0.05
        assert found == {e["content"]["entity"] for e in events[:2] if fnmatch.fnmatchcase(text, e["content"]["entity"])}


def test_ten_thousand_rules_match_within_five_ms() -> None:
    from bench.policy_match import NOTICES, hostile_list

    book = PolicyBook([LIST])
    book.update(LIST, hostile_list(10_000))
    book.match(user="@warm:up.org")
    times = []
    for _ in range(5):
        for user, room in NOTICES:
            started = time.perf_counter()
            book.match(user=user, rooms=[room])
            times.append(time.perf_counter() - started)
    assert sorted(times)[len(times) // 2] < 0.005, times


def test_a_notice_names_the_rules_with_the_list_and_a_clipped_one_line_reason() -> None:
    book = PolicyBook([LIST])
    book.update(LIST, [{"type": "m.room.name", "state_key": "", "content": {"name": "Bans\u202e list"}},
                       _rule("user", "@spam:hs", "first line\nsecond line " + "y" * 1000)])
    record = _record(1, _ms("2026-12-07T09:00:00"), target="@spam:hs")
    body = render(notice_view(record, "!admin", NoticeContext(policy=book.match(user="@spam:hs")))).body
    line = next(line for line in body.splitlines() if "policy lists" in line)
    assert "@spam:hs" in line and "Bans list" in line and "first line ↵ second line" in line and "…" in line
    assert "\u202e" not in body
    assert "policy lists" not in render(notice_view(record, "!admin", NoticeContext(policy=[]))).body


async def test_a_failing_matcher_never_fails_a_notice(tmp_path: Path) -> None:
    class Broken:
        def match(self, **_: Any) -> list[Any]:
            raise RuntimeError("a list the matcher chokes on")

    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    inbox = ReportInbox(api=FakeAPI(), reports=store.reports, meta=store.meta, messenger=FakeMessenger(),
                        admin_rooms=["!a:hs"], policy=Broken())  # type: ignore[arg-type]
    await store.reports.add_report(ReportFacts(kind="user", report_id=1, received_ts=1, reporter="@r:hs", target="@t:hs"))
    record = await store.reports.get_report("user", 1)
    assert record is not None
    context = await inbox.context(record)
    assert context.policy == [] and "User report u1" in render(notice_view(record, "!admin", context)).body
    await db.close()


# -- the Matrix layer: a list room is read, never written to, never an admin room


async def test_the_client_never_writes_to_a_list_and_never_takes_an_admin_room_for_one(tmp_path: Path) -> None:
    from nio import RoomResolveAliasResponse

    from bot.matrix.client import MatrixClient, MatrixError
    from bot.matrix.rooms import AdminRooms

    db = Database(tmp_path / "m.db")
    await db.open()
    store = Stores.over(db)
    seen: list[tuple[str, list[dict[str, Any]]]] = []
    client = MatrixClient(
        homeserver_url="http://127.0.0.1:9", user_id="@bot:hs", token=None, password=None, device_id="DEV",
        device_name="t", meta=store.meta, journal=store.journal, crypto_dir=None, admin_rooms=AdminRooms(["!admin:hs"]),
        policy_lists=["!list:hs", "#bans:hs"], on_policy_state=lambda room, events: seen.append((room, events)))
    client.client.restore_login("@bot:hs", "DEV", "token")
    joined: list[str] = []

    async def resolve(alias: str) -> Any:
        return RoomResolveAliasResponse(alias, "!admin:hs", ["hs"])  # the alias points at the admin room

    async def join(room_id: str) -> Any:
        joined.append(room_id)
        return SimpleNamespace(room_id=room_id)

    client.client.room_resolve_alias = resolve  # type: ignore[method-assign]
    client.client.join = join  # type: ignore[method-assign]
    await client.follow_policy_lists()
    assert joined == ["!list:hs"] and "!admin:hs" not in client.policy_rooms
    with pytest.raises(MatrixError, match="policy list"):
        await client.send("!list:hs", {"msgtype": "m.notice", "body": "hello"})
    # Its state goes to the book; its timeline is no one's command.
    rule = {"type": "m.policy.rule.user", "state_key": "r1", "content": {"entity": "@x:hs", "recommendation": "m.ban"}}
    message = {"type": "m.room.message", "event_id": "$m", "sender": "@a:hs", "content": {"body": "!admin server version"}}
    sync = SimpleNamespace(rooms=SimpleNamespace(join={"!list:hs": SimpleNamespace(
        state=[SimpleNamespace(source=rule)], timeline=SimpleNamespace(events=[SimpleNamespace(source=message)]))}))
    client.lists._feed_policy_lists(sync)  # type: ignore[arg-type]
    assert seen == [("!list:hs", [rule])]
    await client.close()
    await db.close()


async def test_a_changed_rule_is_indexed_off_the_event_loop_while_matching_goes_on() -> None:
    import asyncio

    from bench.policy_match import hostile_list

    book = PolicyBook([LIST])
    book.update(LIST, hostile_list(10_000))
    book.match(user="@warm:up.org")  # the first index, built where it is first needed
    assert book.indexed == 10_000
    book.update(LIST, [_rule("user", "@late:hs", "added later")])
    started = time.perf_counter()
    assert book.match(user="@late:hs") == []  # the index in use, not a build per notice
    assert time.perf_counter() - started < 0.05
    deadline = time.monotonic() + 30
    while book.indexed < 10_001:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert [h.rule.reason for h in book.match(user="@late:hs")] == ["added later"]


def test_the_bot_starts_without_loading_matplotlib() -> None:
    import subprocess
    import sys

    code = ("import sys, bot.app, bot.inbox.inbox, bot.inbox.chart, commands; commands.load_groups(); "
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
