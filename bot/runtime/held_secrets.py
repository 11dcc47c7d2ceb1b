"""Typed passwords waiting for a confirmation, held in memory only.

`user reset-password @bob:hs S3cret` waits for `confirm <code>`; the prompt's stored invocation is
what runs then. A password in it would be a copy of a secret in the state database, where a copy
of the file (a backup, a stolen disk) keeps it long after the command ran. So the stored
invocation holds a marker where the password was, and the password stays in this process's memory
until the prompt is decided or expires. After a restart the marker finds nothing: that
confirmation is refused ("send the command again"), never run with a password it does not have.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.handler_api.invocation import Invocation, encode

HELD = "(held in memory)"  # what the stored invocation says instead of a typed secret


class HeldSecrets:
    def __init__(self) -> None:
        self._held: dict[str, dict[str, Any]] = {}

    def stored_form(self, code: str, inv: Invocation) -> str:
        """The invocation to store under confirmation `code`, its typed secrets kept here instead."""
        secrets = {name: inv.args[name] for name in inv.command.secret_names if inv.args.get(name) not in (None, "", [])}
        if not secrets:
            return encode(inv)
        self._held[code] = secrets
        return encode(replace(inv, args={**inv.args, **{name: HELD for name in secrets}}))

    def restore(self, code: str, inv: Invocation) -> Invocation | None:
        """The stored invocation with its secrets back; None when they were lost (a restart)."""
        marked = [name for name in inv.command.secret_names if inv.args.get(name) == HELD]
        if not marked:
            return inv
        held = self._held.get(code)
        if held is None or any(name not in held for name in marked):
            return None
        return replace(inv, args={**inv.args, **{name: held[name] for name in marked}})

    def drop(self, code: str) -> None:
        self._held.pop(code, None)
