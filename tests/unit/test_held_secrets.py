"""A typed password waiting for a confirmation is held in memory, never in the stored invocation;
after a restart the confirmation is refused rather than run without it (or with a generated one)."""

from __future__ import annotations

from bot.handler_api.argtypes import ParseEnv
from bot.handler_api.invocation import decode
from bot.runtime.held_secrets import HELD, HeldSecrets
from tests.support.jobs import TABLE, invocation

ENV = ParseEnv(server_name="hs.test", now_ms=0)


def test_the_stored_invocation_holds_a_marker_and_the_password_stays_in_memory() -> None:
    inv = invocation("user reset-password", {"user": "@bob:hs.test", "password": "S3cret-held", "no_logout": False})
    held = HeldSecrets()
    stored = held.stored_form("ABC123", inv)
    assert "S3cret-held" not in stored and HELD in stored
    back = held.restore("ABC123", decode(stored, TABLE, ENV))
    assert back is not None and back.args["password"] == "S3cret-held"
    # Another process (a restart) has nothing in memory: refused, never run without it.
    assert HeldSecrets().restore("ABC123", decode(stored, TABLE, ENV)) is None
    held.drop("ABC123")
    assert held.restore("ABC123", decode(stored, TABLE, ENV)) is None


def test_an_invocation_without_a_typed_password_is_stored_as_it_is() -> None:
    inv = invocation("user reset-password", {"user": "@bob:hs.test", "password": None, "no_logout": False})
    held = HeldSecrets()
    stored = held.stored_form("XYZ789", inv)
    assert HELD not in stored
    assert HeldSecrets().restore("XYZ789", decode(stored, TABLE, ENV)) is not None  # it generates one: nothing lost
