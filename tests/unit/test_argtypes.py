from __future__ import annotations

import pytest

from bot.handler_api.argtypes import (
    ArgumentError, Duration, EventID, Identifier, Int, LocalUserID, MxcURI, ParseEnv, RoomAlias, RoomID, RoomRef,
    ServerName, Size, Timestamp, UserID,
)

ENV = ParseEnv(server_name="example.org", now_ms=1_700_000_000_000)
V12_ROOM = "!" + "A" * 40 + "b-_"


def test_user_ids_and_bare_localparts() -> None:
    assert UserID.parse("@spammer:example.org", ENV) == "@spammer:example.org"
    assert UserID.parse("spammer", ENV) == "@spammer:example.org"
    assert UserID.parse("@a:matrix.other.net:8448", ENV).server_name == "matrix.other.net:8448"
    assert LocalUserID.parse("alice", ENV).localpart == "alice"
    for bad in ["@:example.org", "@alice", "@al ice:example.org", "@a/b:example.org", "@a?b:example.org", "", "a:b", "@a:exa mple.org"]:
        with pytest.raises(ArgumentError):
            UserID.parse(bad, ENV)
    with pytest.raises(ArgumentError, match="not a user of this homeserver"):
        LocalUserID.parse("@alice:elsewhere.net", ENV)


def test_room_ids_including_server_less_v12() -> None:
    assert RoomID.parse("!abc:example.org", ENV) == "!abc:example.org"
    assert RoomID.parse(V12_ROOM, ENV) == V12_ROOM
    with pytest.raises(ArgumentError, match="43 characters"):
        RoomID.parse("!short", ENV)
    with pytest.raises(ArgumentError):
        RoomID.parse("!" + "A" * 42 + "/", ENV)
    assert isinstance(RoomRef.parse("#room:example.org", ENV), RoomAlias)
    assert RoomRef.parse("#room", ENV) == "#room:example.org"
    assert isinstance(RoomRef.parse("!abc:example.org", ENV), RoomID)
    with pytest.raises(ArgumentError, match="not a room"):
        RoomRef.parse("room", ENV)


async def test_aliases_are_resolved_to_room_ids() -> None:
    class Resolver:
        async def resolve_alias(self, alias: str) -> str:
            assert alias == "#room:example.org"
            return "!resolved:example.org"

    resolved = await RoomRef.resolve(RoomRef.parse("#room", ENV), Resolver())
    assert resolved == "!resolved:example.org" and isinstance(resolved, RoomID)


def test_event_ids_mxc_and_server_names() -> None:
    assert EventID.parse("$abc123_-", ENV) == "$abc123_-"
    with pytest.raises(ArgumentError):
        EventID.parse("abc", ENV)
    uri = MxcURI.parse("mxc://example.org/AbC_123-x", ENV)
    assert uri.server_name == "example.org" and uri.media_id == "AbC_123-x"
    for bad in ["mxc://example.org/../x", "mxc://example.org/", "https://example.org/x", "mxc://exa mple/x"]:
        with pytest.raises(ArgumentError):
            MxcURI.parse(bad, ENV)
    assert ServerName.parse("matrix.org:8448", ENV) == "matrix.org:8448"
    with pytest.raises(ArgumentError):
        ServerName.parse("evil.org/../x", ENV)


@pytest.mark.parametrize("token", ["", ".", "..", "a/b", "a?b", "a#b"])
def test_identifiers_reject_what_would_change_a_path(token: str) -> None:
    with pytest.raises(ArgumentError):
        Identifier.parse(token, ENV)


def test_sizes_durations_and_dates() -> None:
    assert Size.parse("10M", ENV) == 10 * 1024 * 1024
    assert Size.parse("1.5G", ENV) == int(1.5 * 1024**3)
    assert Size.parse("512", ENV) == 512
    assert Size.parse("2KiB", ENV) == 2048
    assert "10 MiB" in Size.describe(Size.parse("10M", ENV))
    with pytest.raises(ArgumentError):
        Size.parse("ten", ENV)
    assert Duration.parse("30d", ENV) == 30 * 86_400_000
    assert Duration.parse("1d12h", ENV) == 36 * 3_600_000
    with pytest.raises(ArgumentError):
        Duration.parse("30 fortnights", ENV)
    before = Timestamp(past=True)
    assert before.parse("30d", ENV) == ENV.now_ms - 30 * 86_400_000
    assert Timestamp(past=False).parse("7d", ENV) == ENV.now_ms + 7 * 86_400_000
    assert before.parse("2024-01-31", ENV) == 1706659200000
    assert before.describe(before.parse("2024-01-31T12:30", ENV)) == "2024-01-31 12:30 UTC"
    with pytest.raises(ArgumentError, match="not a date"):
        before.parse("31/01/2024", ENV)


def test_numbers_have_bounds() -> None:
    assert Int(minimum=1, maximum=10).parse("5", ENV) == 5
    with pytest.raises(ArgumentError, match="at most 10"):
        Int(minimum=1, maximum=10).parse("11", ENV)
