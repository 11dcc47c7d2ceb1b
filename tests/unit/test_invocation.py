"""One stored invocation (bot/handler_api/invocation.py): encoded in one place, and validated again when
loaded — a stored invocation that no longer fits its command is refused, never run."""

from __future__ import annotations

import json

import pytest

from bot.handler_api.argtypes import ParseEnv, RoomID, UserID
from bot.handler_api.invocation import InvalidInvocation, Invocation, decode, encode, typed_args
from bot.handler_api.spec import Target
from commands import load_table

TABLE = load_table()
ENV = ParseEnv(server_name="hs.test", now_ms=1_700_000_000_000)


def stored(name: str, args: dict, **extra) -> Invocation:
    command = TABLE.by_name[name]
    return Invocation(command=command, args=typed_args(command, args, ENV), requester="@a:hs.test",
                      room_id="!admin:hs.test", event_id="$c", thread_root="$t", **extra)


def test_an_invocation_comes_back_typed_as_it_was_stored() -> None:
    inv = stored("room delete", {"room": "!r:hs.test", "purge": True, "block": True},
                 targets=(Target("user", "@x:hs.test", "why"),))
    back = decode(encode(inv), TABLE, ENV)
    assert back == inv and isinstance(back.args["room"], RoomID)
    assert back.args == {"room": "!r:hs.test", "purge": True, "block": True, "message": None, "new_room_user": None,
                         "room_name": None, "force_purge": False}
    assert back.command_line() == "room delete !r:hs.test --purge --block"


@pytest.mark.parametrize("kind", ["user", "room", "members"])
def test_every_kind_of_derived_target_comes_back(kind: str) -> None:
    """A prompt's derived targets survive the store: a room judged by its members included (a
    moderator's `room quarantine-media` stores one, and its confirmation must still run)."""
    inv = stored("room quarantine-media", {"room": "!r:hs.test"}, targets=(Target(kind, "!r:hs.test", "why"),))
    assert decode(encode(inv), TABLE, ENV) == inv
    data = json.loads(encode(inv))
    data["targets"][0]["kind"] = "server"
    with pytest.raises(InvalidInvocation, match="neither an account nor a room"):
        decode(json.dumps(data), TABLE, ENV)


def test_secrets_stay_out_of_copies_kept_for_the_record() -> None:
    inv = stored("user create", {"user": "@new:hs.test", "password": "hunter2"})
    assert "hunter2" in encode(inv)  # the pending confirmation needs it; it is cleared once decided
    assert "hunter2" not in encode(inv, hide_secrets=True)
    assert "hunter2" not in inv.summary() and "hunter2" not in inv.command_line()


@pytest.mark.parametrize("change, why", [
    (lambda d: d["args"].update(purge=False), "--force-purge only makes sense with --purge"),  # the command's own check
    (lambda d: d["args"].update(sparkle=True), "sparkle is no longer an argument of room delete"),
    (lambda d: d["args"].update(room="#not-a-room-id"), "is not a room ID"),
    (lambda d: d["args"].update(new_room_user="@x:elsewhere"), "is not a user of this homeserver"),
    (lambda d: d.update(command="room vaporise"), "room vaporise does not exist"),
    (lambda d: d.update(command="confirm"), "confirm does not exist"),  # the runtime's verbs are never stored
    (lambda d: d.update(format=99), "another version of the bot"),
])
def test_a_stored_invocation_that_no_longer_fits_is_refused(change, why: str) -> None:
    data = json.loads(encode(stored("room delete", {"room": "!r:hs.test", "purge": True, "force_purge": True})))
    change(data)
    with pytest.raises(InvalidInvocation, match=why):
        decode(json.dumps(data), TABLE, ENV)


def test_numbers_are_checked_against_their_range_again() -> None:
    data = json.loads(encode(stored("user redact", {"user": "@spam:hs.test", "limit": 10})))
    data["args"]["limit"] = 10_000_000
    with pytest.raises(InvalidInvocation, match="out of range"):
        decode(json.dumps(data), TABLE, ENV)


def test_a_new_flag_takes_its_default_in_what_was_stored_before_it() -> None:
    data = json.loads(encode(stored("room delete", {"room": "!r:hs.test"})))
    del data["args"]["force_purge"]  # as stored by a version without the flag
    assert decode(json.dumps(data), TABLE, ENV).args["force_purge"] is False


def test_user_ids_stay_user_ids() -> None:
    inv = decode(encode(stored("user suspend", {"user": "@s:hs.test", "undo": False})), TABLE, ENV)
    assert isinstance(inv.args["user"], UserID)
