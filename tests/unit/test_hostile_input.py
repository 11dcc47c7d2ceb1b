"""Hostile input outside the renderer: argument ranges, identifiers, pinned admin rooms, a report
queue that one bad notice cannot block, invites that cannot stop the sync loop, replies first."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from nio import RoomLeaveResponse, RoomSendResponse

from bot.matrix.rooms import MOVED, PINNED, SAME, AdminRooms
from bot.homeserver.admin_api.paths import ADMIN
from bot.handler_api.argtypes import ArgumentError, Duration, EventID, Int, Number, ParseEnv, Size, Timestamp
from bot.handler_api.helptext import command_help
from bot.matrix.client import INVITE_TASKS, MAX_OPEN_INVITES, MatrixClient, MatrixError
from bot.handler_api.parsing import PageRequest
from bot.inbox.inbox import MAX_NOTICE_ATTEMPTS, ReportInbox
from bot.state.db import Database
from bot.state.stores import Stores
from bot.records import ReportFacts

ENV = ParseEnv(server_name="hs", now_ms=1_700_000_000_000)


# -- ranges at parse time


@pytest.mark.parametrize("argtype, token", [
    (Timestamp(past=False), "3000000d"),  # year 10240
    (Timestamp(past=False), "1" * 5_000 + "d"),
    (Timestamp(past=True), "100y 1d"),
    (Timestamp(past=True), "1000y"),  # before 1970
    (Timestamp(past=False), "10000-01-01"),
    (Timestamp(past=True), "60y"),  # before 1970, although a duration under 100y
    (Timestamp(past=True), "0001-01-01"),
    (Timestamp(past=False), "9999-12-31T23:00-05:00"),  # year 10000 in UTC
    (Duration, "1" * 5_000 + "s"),
    (Duration, "101y"),
    (Size, "2P"),
    (Size, "1025T"),  # over 1 PiB, in a unit the pattern accepts
    (Size, "9" * 5_000),
    (Int(), "1" * 5_000),
    (Int(), str(2**31)),
    (Int(minimum=0), "-1"),
    (Number(), "1e400"),
    (Number(), "nan"),
])
def test_out_of_range_arguments_are_usage_errors(argtype: Any, token: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        argtype.parse(token, ENV)
    assert len(str(caught.value)) < 300  # a 5,000-digit token is not echoed whole


def test_limits_are_said_in_the_help() -> None:
    from commands import load_table

    body = str(command_help(load_table().by_name["token create"], "!admin"))
    assert "9999-12-31" in body and "100y" in body
    assert Timestamp(past=False).parse("100y", ENV) > ENV.now_ms


def test_event_ids_of_room_version_3_with_slash_and_plus_are_accepted_and_percent_encoded() -> None:
    event_id = EventID.parse("$AbC/dEf+GhI/jK", ENV)
    assert str(ADMIN.v1.fetch_event[event_id]) == "/_synapse/admin/v1/fetch_event/%24AbC%2FdEf%2BGhI%2FjK"
    with pytest.raises(ArgumentError):
        EventID.parse("$a?b", ENV)


# -- admin rooms: pinned at first resolution


def test_an_alias_is_pinned_at_first_resolution_and_a_move_is_a_warning_not_an_admin_room() -> None:
    rooms = AdminRooms(["#admins:hs", "!fixed:hs"])
    assert rooms.resolved("#admins:hs", "!first:hs") == PINNED
    assert rooms.resolved("#admins:hs", "!first:hs") == SAME
    assert rooms.resolved("#admins:hs", "!attacker:hs") == MOVED
    assert "!attacker:hs" not in rooms and "!first:hs" in rooms and "!fixed:hs" in rooms
    assert "!attacker:hs" in rooms.warnings()[0] and "!first:hs" in rooms.warnings()[0]
    # The next start loads the pin: the room is an admin room before any resolution, the move is still refused.
    again = AdminRooms(["#admins:hs"], pins={"#admins:hs": "!first:hs", "#gone:hs": "!old:hs"})
    assert "!first:hs" in again and "!old:hs" not in again
    assert again.resolved("#admins:hs", "!attacker:hs") == MOVED and "!attacker:hs" not in again


# -- the report queue: one bad notice never blocks it


class FlakyMessenger:
    """Refuses every notice whose body contains `poison` (as Synapse refuses a too-large event)."""

    def __init__(self, poison: str, *, status: int = 413, errcode: str = "M_TOO_LARGE") -> None:
        self.poison = poison
        self.status, self.errcode = status, errcode
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.refused = 0

    def is_encrypted(self, room_id: str) -> bool:
        return room_id.startswith("!enc")

    async def send(self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *,
                   txn_id: str | None = None, background: bool = False) -> str:
        if self.poison in content.get("body", ""):
            self.refused += 1
            raise MatrixError("refused", errcode=self.errcode, status=self.status)
        self.sent.append((room_id, content))
        return f"$ev{len(self.sent)}"


def _facts(report_id: int, reason: str) -> ReportFacts:
    return ReportFacts(kind="user", report_id=report_id, received_ts=1_700_000_000_000 + report_id, reporter="@r:hs",
                       target="@spammer:hs", reason=reason)


async def _inbox(tmp_path: Path, messenger: Any, rooms: list[str]) -> tuple[ReportInbox, Stores]:
    db = Database(tmp_path / "state.db")
    await db.open()
    store = Stores.over(db)
    return ReportInbox(api=None, reports=store.reports, meta=store.meta, messenger=messenger, admin_rooms=rooms), store


async def test_a_notice_the_homeserver_refuses_is_retried_alone_then_minimal_then_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.inbox.posting.NOTICE_RETRY_S", 0.0)
    messenger = FlakyMessenger(poison="POISON")
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs", "!enc:hs"])
    await store.reports.record_new_reports([_facts(1, "POISON"), _facts(2, "fine")], post_state="pending", meta={})
    await inbox.flush()
    # The report after the poisoned one reached both rooms at once.
    assert {room for room, _ in await store.reports.report_notices("user", 2)} == {"!a:hs", "!enc:hs"}
    for _ in range(MAX_NOTICE_ATTEMPTS + 2):
        await store.reports.record_new_reports([_facts(10 + _, "later")], post_state="pending", meta={})
        await inbox.flush()
    assert len(await store.reports.report_notices("user", 10 + MAX_NOTICE_ATTEMPTS + 1)) == 2
    # The full notice was tried MAX-1 times, then the minimal one (which carries no reason) went out.
    assert messenger.refused == 2 * (MAX_NOTICE_ATTEMPTS - 1)
    minimal = [c for _, c in messenger.sent if "too large for a notice" in c["body"]]
    assert len(minimal) == 2 and "User report u1" in minimal[0]["body"]
    assert (await store.reports.get_report("user", 1)).post_state == "posted"  # type: ignore[union-attr]
    await store.db.close()


async def test_a_notice_that_fails_even_when_minimal_is_given_up_without_holding_anything_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.inbox.posting.NOTICE_RETRY_S", 0.0)
    messenger = FlakyMessenger(poison="u1 ")  # the minimal form names the report too
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"])
    await store.reports.record_new_reports([_facts(1, "x")], post_state="pending", meta={})
    for _ in range(MAX_NOTICE_ATTEMPTS + 3):
        await inbox.flush()
    assert messenger.refused == MAX_NOTICE_ATTEMPTS
    assert (await store.reports.get_report("user", 1)).post_state == "failed"  # type: ignore[union-attr]
    await store.db.close()


async def test_a_room_that_cannot_take_anything_now_is_retried_without_charging_the_notice(tmp_path: Path) -> None:
    messenger = FlakyMessenger(poison="report", status=502, errcode="M_UNKNOWN")
    inbox, store = await _inbox(tmp_path, messenger, ["!a:hs"])
    await store.reports.record_new_reports([_facts(1, "x")], post_state="pending", meta={})
    for _ in range(5):
        inbox.delivery._room_retry_at.clear()  # the room's retry pause is over
        await inbox.flush()
    assert messenger.refused == 5 and inbox.failed_notices == set()
    messenger.poison = "nothing matches this"
    inbox.delivery._room_retry_at.clear()
    await inbox.flush()
    assert "User report u1 · open" in messenger.sent[0][1]["body"]
    await store.db.close()


# -- the Matrix layer: invites off the loop, bounded; replies first


async def _matrix(tmp_path: Path, **options: Any) -> tuple[MatrixClient, Stores]:
    db = Database(tmp_path / "m.db")
    await db.open()
    store = Stores.over(db)
    client = MatrixClient(
        homeserver_url="http://127.0.0.1:9", user_id="@bot:hs", token=None, password=None, device_id="DEV",
        device_name="t", meta=store.meta, journal=store.journal, crypto_dir=None, admin_rooms=AdminRooms(["!admin:hs"]), **options)
    client.client.restore_login("@bot:hs", "DEV", "token")
    return client, store


def _invites(*room_ids: str) -> Any:
    return SimpleNamespace(rooms=SimpleNamespace(invite={r: SimpleNamespace(invite_state=[]) for r in room_ids}))


async def test_an_invite_flood_is_bounded_and_a_stalled_decline_times_out_and_is_remembered(tmp_path: Path) -> None:
    client, store = await _matrix(tmp_path, invite_timeout_s=0.05)
    running, peak, calls = 0, 0, []

    async def stalled_leave(room_id: str) -> Any:
        nonlocal running, peak
        calls.append(room_id)
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(3600)  # a remote server that never answers send_leave
        finally:
            running -= 1

    client.client.room_leave = stalled_leave  # type: ignore[method-assign]
    client.invites._queue_invites(_invites(*[f"!spam{i}:evil" for i in range(MAX_OPEN_INVITES + 50)]))
    assert len(client._open_invites) == MAX_OPEN_INVITES and client.invites_dropped == 50
    deadline = time.monotonic() + 30
    while client._open_invites and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not client._open_invites and peak <= INVITE_TASKS and len(calls) == MAX_OPEN_INVITES
    # Seen again (the next start's full sync): not declined again before the retry time.
    client.invites._queue_invites(_invites("!spam0:evil"))
    await client.drain()
    assert calls.count("!spam0:evil") == 1
    await client.close()
    await store.db.close()


async def test_after_a_restart_the_stored_pin_wins_over_where_the_alias_points_now(tmp_path: Path) -> None:
    import json

    from nio import RoomResolveAliasResponse

    from bot.matrix.client import PINS_KEY

    db = Database(tmp_path / "m.db")
    await db.open()
    store = Stores.over(db)
    await store.meta.set_meta(PINS_KEY, json.dumps({"#admins:hs": "!first:hs"}))  # pinned by an earlier run
    client = MatrixClient(
        homeserver_url="http://127.0.0.1:9", user_id="@bot:hs", token=None, password=None, device_id="DEV",
        device_name="t", meta=store.meta, journal=store.journal, crypto_dir=None, admin_rooms=AdminRooms(["#admins:hs"]))

    async def taken_over(alias: str) -> Any:
        return RoomResolveAliasResponse(alias, "!decoy:evil", ["evil"])

    client.client.room_resolve_alias = taken_over  # type: ignore[method-assign]
    assert await client.resolve_admin_rooms() == []
    assert "!first:hs" in client.admin_rooms and "!decoy:evil" not in client.admin_rooms
    assert "!decoy:evil" in client.admin_rooms.warnings()[0]
    assert json.loads(await store.meta.get_meta(PINS_KEY) or "{}") == {"#admins:hs": "!first:hs"}
    await client.close()
    await db.close()


@pytest.mark.parametrize("answer", ["#admins:evil", "!room:evil/../../x", "!room:evil\nforged", "!" + "x" * 300])
async def test_an_admin_alias_answered_with_something_else_than_a_room_id_is_never_pinned(
        tmp_path: Path, answer: str) -> None:
    from nio import RoomResolveAliasResponse

    from bot.matrix.client import PINS_KEY

    db = Database(tmp_path / "m.db")
    await db.open()
    store = Stores.over(db)
    client = MatrixClient(
        homeserver_url="http://127.0.0.1:9", user_id="@bot:hs", token=None, password=None, device_id="DEV",
        device_name="t", meta=store.meta, journal=store.journal, crypto_dir=None, admin_rooms=AdminRooms(["#admins:remote.example"]))

    async def remote_answer(alias: str) -> Any:  # a remote alias is answered by its own server
        return RoomResolveAliasResponse(alias, answer, ["remote.example"])

    client.client.room_resolve_alias = remote_answer  # type: ignore[method-assign]
    assert await client.resolve_admin_rooms() == ["#admins:remote.example"]
    assert list(client.admin_rooms) == [] and await store.meta.get_meta(PINS_KEY) is None
    await client.close()
    await db.close()


async def test_a_stalled_join_of_an_admin_room_times_out_and_frees_the_invite(tmp_path: Path) -> None:
    client, store = await _matrix(tmp_path, invite_timeout_s=0.05)
    joins: list[str] = []

    async def stalled_join(room_id: str) -> Any:
        joins.append(room_id)
        await asyncio.sleep(3600)  # a homeserver that never answers the join

    client.client.join = stalled_join  # type: ignore[method-assign]
    client.invites._queue_invites(_invites("!admin:hs"))
    deadline = time.monotonic() + 5
    while client._open_invites and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    # Given up on for now: the next invite or start tries again, nothing is held meanwhile.
    assert joins == ["!admin:hs"] and not client._open_invites and "!admin:hs" not in client._joining
    await client.close()
    await store.db.close()


async def test_a_stored_direct_room_is_reused_only_while_private_and_encrypted(tmp_path: Path) -> None:
    from nio import MatrixRoom

    client, store = await _matrix(tmp_path)

    def room(room_id: str, members: list[str], *, encrypted: bool = True) -> None:
        matrix_room = MatrixRoom(room_id, "@bot:hs")
        for member in members:
            matrix_room.add_member(member, None, None)
        matrix_room.encrypted = encrypted
        client.client.rooms[room_id] = matrix_room

    room("!dm:hs", ["@bot:hs", "@alice:hs"])
    room("!joined:hs", ["@bot:hs", "@alice:hs", "@mallory:hs"])  # someone else came in since
    room("!clear:hs", ["@bot:hs", "@alice:hs"], encrypted=False)
    assert client.direct._private_with("!dm:hs", "@alice:hs")
    assert not client.direct._private_with("!joined:hs", "@alice:hs")
    assert not client.direct._private_with("!clear:hs", "@alice:hs")
    assert not client.direct._private_with("!dm:hs", "@bob:hs") and not client.direct._private_with("!unknown:hs", "@alice:hs")
    await client.close()
    await store.db.close()


async def test_the_token_of_a_password_login_reaches_the_scrubber_before_it_is_stored(tmp_path: Path) -> None:
    from nio import LoginResponse

    from bot.config import Secret
    from bot.logs import SecretScrubber
    from bot.matrix.client import SESSION_KEY

    db = Database(tmp_path / "m.db")
    await db.open()
    store = Stores.over(db)
    scrubber = SecretScrubber()
    client = MatrixClient(
        homeserver_url="http://127.0.0.1:9", user_id="@bot:hs", token=None, password=Secret("bot-password-1"),
        device_id=None, device_name="t", meta=store.meta, journal=store.journal, crypto_dir=None, admin_rooms=AdminRooms(["!admin:hs"]),
        on_secret=scrubber.add)
    known_when_stored: list[str] = []
    set_meta = store.meta.set_meta

    async def spying_set_meta(key: str, value: str) -> None:
        if key == SESSION_KEY:
            known_when_stored.append(scrubber.scrub(value))
        await set_meta(key, value)

    async def login(password: str, device_name: str) -> Any:
        return LoginResponse("@bot:hs", "NEWDEV", "syt_fresh_token_from_login")

    store.meta.set_meta = spying_set_meta  # type: ignore[method-assign]
    client.client.login = login  # type: ignore[method-assign]
    await client.session._password_login()
    assert known_when_stored == ["@bot:hs NEWDEV ***"]
    await client.close()
    await db.close()


async def test_a_failing_decline_never_reaches_the_sync_loop(tmp_path: Path) -> None:
    client, store = await _matrix(tmp_path)

    async def dropped(room_id: str) -> Any:
        raise ConnectionResetError("connection dropped")

    client.client.room_leave = dropped  # type: ignore[method-assign]
    client.invites._queue_invites(_invites("!a:evil"))
    await client.drain()
    assert '"state": "failed"' in (await store.meta.get_meta("invite.!a:evil") or "")

    async def fine(room_id: str) -> Any:
        return RoomLeaveResponse()

    client.client.room_leave = fine  # type: ignore[method-assign]
    client.invites._queue_invites(_invites("!b:evil"))
    await client.drain()
    assert '"state": "declined"' in (await store.meta.get_meta("invite.!b:evil") or "")
    await client.close()
    await store.db.close()


async def test_report_notices_wait_while_replies_are_sent(tmp_path: Path) -> None:
    client, store = await _matrix(tmp_path)
    client._caught_up_event.set()
    order: list[str] = []
    reply_may_finish = asyncio.Event()

    async def room_send(room_id: str, event_type: str, content: dict[str, Any], **_: Any) -> Any:
        order.append(content["body"])
        if content["body"] == "reply":
            await reply_may_finish.wait()
        return RoomSendResponse(f"$ev{len(order)}", room_id)

    client.client.room_send = room_send  # type: ignore[method-assign]
    reply = asyncio.create_task(client.send("!admin:hs", {"body": "reply"}))
    await asyncio.sleep(0.05)
    notices = [asyncio.create_task(client.send("!admin:hs", {"body": f"notice {i}"}, background=True)) for i in range(3)]
    await asyncio.sleep(0.2)
    assert order == ["reply"]  # the notices wait for the reply
    reply_may_finish.set()
    await asyncio.gather(reply, *notices)
    assert order == ["reply", "notice 0", "notice 1", "notice 2"]
    await client.close()
    await store.db.close()


# -- exports


async def test_a_member_export_reads_the_member_list_once() -> None:
    from commands import load_table

    calls = []

    async def room_members(room: str) -> list[str]:
        calls.append(room)
        return [f"@u{i}:hs" for i in range(2_000)]

    ctx = SimpleNamespace(api=SimpleNamespace(room_members=room_members), server_name="hs")
    handler = load_table().by_name["room members"].handler
    table = await handler(ctx, room="!r:hs", page=PageRequest(from_token=None, limit=500, export=True))
    assert len(table.rows) == 2_000 and table.next_from is None and len(calls) == 1
    page = await handler(ctx, room="!r:hs", page=PageRequest(from_token="500", limit=100))
    assert len(page.rows) == 100 and page.next_from == "600"


async def test_an_export_paged_by_offset_asks_for_the_next_pages_at_once_and_writes_them_in_order() -> None:
    from bot.handler_api.spec import EXPORT_PAGE_SIZE
    from bot.runtime import export as export_module
    from bot.text.views import Table

    total = EXPORT_PAGE_SIZE * 3 + 10
    grown = EXPORT_PAGE_SIZE * 4 + 20  # rows added since the total was read: one page more
    asked: list[str | None] = []
    answers: dict[str | None, asyncio.Future[Table]] = {}

    async def page_at(at: str | None) -> Table:
        asked.append(at)
        start = int(at or 0)
        end = min(start + EXPORT_PAGE_SIZE, grown)
        more = str(end) if end < grown else None
        answers[at] = asyncio.get_running_loop().create_future()
        await answers[at]
        return Table("t", ["n"], [[n] for n in range(start, end)], total=total, next_from=more)

    async def answer(at: str | None) -> None:
        for _ in range(10_000):
            if at in answers:
                answers[at].set_result(None)
                return
            await asyncio.sleep(0)
        raise AssertionError(f"page {at} was never asked for (asked: {asked})")

    rows: list[int] = []

    async def read_all() -> None:
        async for table in export_module._pages(page_at, None, by_offset=True):
            rows.extend(row[0] for row in table.rows)

    reading = asyncio.create_task(read_all())
    pages = [str(EXPORT_PAGE_SIZE * k) for k in (1, 2, 3)]
    for _ in range(50):
        await asyncio.sleep(0)
    assert asked == [None, pages[0]]  # the first two pages at once: their offsets are known before any answer
    await answer(None)
    for _ in range(50):
        await asyncio.sleep(0)
    assert asked == [None, *pages[:export_module.PAGES_AHEAD]]  # with the total known, the next ones too
    await answer(pages[1])  # answered out of order…
    await answer(pages[0])
    await answer(pages[2])  # (asked once the first of them was written)
    await answer(str(EXPORT_PAGE_SIZE * 4))  # … and the rows added meanwhile, a page past the total
    await reading
    assert rows == list(range(grown))  # … written in order, none twice, none missing
    assert asked == [None, *pages, str(EXPORT_PAGE_SIZE * 4)]


@pytest.mark.parametrize(("page_size", "total", "asked_1000"), [(1000, 35, 1), (7, 35, 1), (500, 2_400, 2)])
async def test_a_listing_paged_by_offset_that_ends_early_or_gives_smaller_pages_loses_no_row(
        page_size: int, total: int, asked_1000: int) -> None:
    """The second page asked for with the first is a guess: dropped when the first page is the last
    one, or when the homeserver gives fewer rows a page than asked (then pages follow its tokens)."""
    from bot.runtime import export as export_module
    from bot.text.views import Table

    asked: list[str | None] = []

    async def page_at(at: str | None) -> Table:
        asked.append(at)
        await asyncio.sleep(0.001)
        start = int(at or 0)
        end = min(start + page_size, total)
        return Table("t", ["n"], [[n] for n in range(start, end)], total=total, next_from=str(end) if end < total else None)

    rows = [row[0] async for table in export_module._pages(page_at, None, by_offset=True) for row in table.rows]
    assert rows == list(range(total))  # in order, none twice, none missing
    assert asked[:2] == [None, "1000"] and asked.count("1000") == asked_1000


async def test_an_export_not_paged_by_offset_asks_for_one_page_after_the_other() -> None:
    from bot.runtime import export as export_module
    from bot.text.views import Table

    asked: list[str | None] = []
    in_flight = 0
    most = 0

    async def page_at(at: str | None) -> Table:
        nonlocal in_flight, most
        asked.append(at)
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        start = int(at or 0)
        return Table("t", ["n"], [[start]], total=5, next_from=str(start + 1) if start < 4 else None)

    seen = [table.rows[0][0] async for table in export_module._pages(page_at, None)]
    assert seen == [0, 1, 2, 3, 4] and most == 1  # a cursor is known only from the page before


# -- remote answers are checked like people's words


@pytest.mark.parametrize("answer", [{"room_id": "!a:hs/../../x"}, {"room_id": "#alias:hs"}, {"room_id": 5}, {}, ["x"]])
async def test_an_alias_answer_that_is_not_a_room_id_is_an_error(answer: Any) -> None:
    import httpx

    from bot.homeserver.admin_api import AdminAPI, AdminHTTP
    from bot.homeserver.admin_api.errors import AdminAPIError

    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=answer))
    api = AdminAPI(AdminHTTP("http://hs.test", lambda: "t", transport=transport))
    with pytest.raises(AdminAPIError) as caught:
        await api.resolve_alias("#remote:evil.example")
    assert caught.value.errcode == "M_INVALID_RESPONSE"
    await api.aclose()


# -- no failure of one event's handling ends the sync loop


async def test_a_failing_step_after_a_sync_is_logged_and_the_loop_syncs_again(tmp_path: Path) -> None:
    client, store = await _matrix(tmp_path)
    await store.meta.set_meta("sync.next_batch", "s0")
    stop = asyncio.Event()
    syncs: list[str | None] = []

    async def sync_once(since: str | None, catching_up: bool, stop_: asyncio.Event) -> Any:
        syncs.append(since)
        if len(syncs) >= 3:
            stop.set()
        return SimpleNamespace(rooms=SimpleNamespace(invite={}, join={}), device_list=SimpleNamespace(changed=[]),
                               next_batch=f"s{len(syncs)}")

    async def broken(*args: Any) -> None:
        raise RuntimeError("key maintenance exploded")

    client._sync_once = sync_once  # type: ignore[method-assign]
    client._after_sync = broken  # type: ignore[method-assign]
    client.timeline._retry_pending = broken  # type: ignore[method-assign]
    await asyncio.wait_for(client.run(SimpleNamespace(), stop), timeout=10)
    assert syncs == ["s0", "s1", "s2"] and await store.meta.get_meta("sync.next_batch") == "s3"
    await client.close()
    await store.db.close()


async def test_the_sync_loop_goes_on_while_a_decline_is_still_hanging(tmp_path: Path) -> None:
    client, store = await _matrix(tmp_path, invite_timeout_s=3600)
    await store.meta.set_meta("sync.next_batch", "s0")
    stop = asyncio.Event()
    syncs: list[str | None] = []

    async def stalled_leave(room_id: str) -> Any:
        await asyncio.sleep(3600)  # a remote server that never answers send_leave

    async def sync_once(since: str | None, catching_up: bool, stop_: asyncio.Event) -> Any:
        syncs.append(since)
        if len(syncs) >= 3:
            stop.set()
        invite = {"!trap:evil": SimpleNamespace(invite_state=[])} if len(syncs) == 1 else {}
        return SimpleNamespace(rooms=SimpleNamespace(invite=invite, join={}), device_list=SimpleNamespace(changed=[]),
                               next_batch=f"s{len(syncs)}")

    client.client.room_leave = stalled_leave  # type: ignore[method-assign]
    client._sync_once = sync_once  # type: ignore[method-assign]
    await asyncio.wait_for(client.run(SimpleNamespace(), stop), timeout=15)
    # Two more syncs went by while the decline still hangs: invites never hold the loop.
    assert syncs == ["s0", "s1", "s2"] and client._open_invites == {"!trap:evil"}
    await client.drain(timeout=0)
    await client.close()
    await store.db.close()


async def test_a_failure_while_handling_one_event_is_logged_and_the_next_event_is_handled(tmp_path: Path) -> None:
    from nio import RoomMessageText

    client, store = await _matrix(tmp_path)
    delivered: list[str] = []

    class Sink:
        async def on_message(self, msg: Any) -> None:
            delivered.append(msg.body)

        async def on_reaction(self, reaction: Any) -> None: ...

        async def on_undecryptable(self, event: Any) -> None: ...

    def event(event_id: str, text: str) -> Any:
        return RoomMessageText.from_dict({"event_id": event_id, "sender": "@mod:hs", "origin_server_ts": 1,
                                          "type": "m.room.message", "content": {"msgtype": "m.text", "body": text}})

    real_claim = store.journal.claim_event

    async def claim(event_id: str, room_id: str) -> bool:
        if event_id == "$bad":
            raise RuntimeError("the journal failed on this one")
        return await real_claim(event_id, room_id)

    store.journal.claim_event = claim  # type: ignore[method-assign]
    timeline = SimpleNamespace(events=[event("$bad", "first"), event("$good", "second")], limited=False)
    response = SimpleNamespace(rooms=SimpleNamespace(join={"!admin:hs": SimpleNamespace(timeline=timeline)}))
    await client.timeline._handle_timeline(response, Sink())  # type: ignore[arg-type]
    await client.drain()
    assert delivered == ["second"]
    await client.close()
    await store.db.close()


async def test_the_memory_of_declined_invites_is_pruned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import bot.matrix.invites as matrix_invites

    monkeypatch.setattr(matrix_invites, "MAX_INVITE_RECORDS", 5)
    client, store = await _matrix(tmp_path)
    await store.meta.set_meta("invite.!ancient:evil", json.dumps({"attempts": 3, "last": 1.0, "state": "declined"}))

    async def leave(room_id: str) -> Any:
        return RoomLeaveResponse()

    client.client.room_leave = leave  # type: ignore[method-assign]
    for index in range(12):
        await client.invites._decline(f"!spam{index}:evil", "@spammer:evil")
        client.invites._invites_pruned_at = -1e9  # the pruning pause is over
    kept = await store.db.run(lambda c: [r[0] for r in c.execute("SELECT key FROM meta WHERE key LIKE 'invite.%'")])
    assert len(kept) == 5 and "invite.!ancient:evil" not in kept and "invite.!spam11:evil" in kept
    await client.close()
    await store.db.close()
