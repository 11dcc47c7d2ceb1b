"""Confirmation codes and the prompt that shows exactly what will run."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from bot.handler_api.invocation import Invocation
from bot.text.views import Code, Doc, Record, Text, Untrusted

# No 0/O, 1/I/L: codes are read off a screen and typed on a phone.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CONFIRM_KEYS = frozenset({"✅", "✔️", "✔", "👍"})
CANCEL_KEYS = frozenset({"❌", "✖️", "👎"})


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def code_for(key: bytes, event_id: str) -> str:
    """The code of the prompt that answers this event: the same every time it is computed, so that
    a prompt sent again after a restart (the same event, under the same transaction ID) is the same
    prompt with the same code. Keyed with the bot's own secret: not guessable from the event ID."""
    digest = hmac.new(key, event_id.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big")
    chars = []
    for _ in range(CODE_LENGTH):
        value, index = divmod(value, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


def normalise_code(text: str) -> str:
    return text.strip().upper()


def heading(inv: Invocation) -> str:
    """What will happen, in words: the command's summary, or — for `--undo` (the way back of a toggle
    like `user lock`) — what the flag's help says the reverse does; an undo says which entry it takes back."""
    name, summary = inv.name, inv.command.summary
    reverse = next((flag for flag in inv.command.all_flags if flag.dest == "undo"), None)
    if reverse is not None and inv.args.get("undo") is True:
        name, summary = f"{inv.name} --undo", reverse.help[:1].upper() + reverse.help[1:]
    if inv.undoes is not None:
        return f"This will undo #{inv.undoes}: {name} — {summary}"
    return f"This will run: {name} — {summary}"


def prompt_view(inv: Invocation, preview: Any, *, code: str | None, prefix: str, timeout_s: float,
                second_person: bool = False, extra: Any = None) -> Doc:
    """`second_person`: the two-person rule applies (someone else than the requester confirms);
    `extra`: what the source adds (the schedule it will run on)."""
    what = Record(heading(inv), [(name, value) for name, value in inv.described()
                                 if not (name == "--undo" and inv.args.get("undo") is True)])
    if code is None:
        footer = Text("Dry run: nothing was changed.", tone="info")
    else:
        minutes = max(1, round(timeout_s / 60))
        who = ("Two-person rule: someone else than " + inv.requester + " whose role may run it must confirm. To run it, "
               "they send ") if second_person else "To run it, send "
        footer = Text(
            who, Code(f"{prefix} confirm {code}"), " or react ✅ to this message within "
            f"{minutes} min. To drop it: ", Code(f"{prefix} cancel {code}"), " or ❌.",
            tone="warning",
        )
    return Doc(what, extra, preview, undo_line(inv, prefix), footer)


def undo_line(inv: Invocation, prefix: str) -> Text | None:
    """What the prompt says about taking it back: an undo is final, an irreversible action has no
    undo (declared on its command or flag), a reversible one will offer one."""
    if inv.undoes is not None:
        return Text(f"This takes back audit entry #{inv.undoes}. An undo is final: it offers no undo of its own.")
    if inv.irreversible:
        return Text(f"No undo: {inv.irreversible}.", tone="warning")
    if inv.reversible:
        return Text("Reversible: once done, its reply ends with ", Code(f"{prefix} undo <entry>"), ".")
    return None


def prompt_minimal(inv: Invocation, *, code: str, prefix: str) -> Text:
    """The prompt when the full one does not fit in one event (or cannot be shown): the code comes
    first, so that it survives even the last cut of the fitting renderer."""
    return Text(
        Code(f"{prefix} confirm {code}"), f" runs {inv.name} ", Untrusted(inv.summary(), 120),
        ". What it acts on is too large to show in one message. To drop it: ", Code(f"{prefix} cancel {code}"), ".",
        tone="warning",
    )
