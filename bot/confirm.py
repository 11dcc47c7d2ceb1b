"""Confirmation codes and the prompt that shows exactly what will run."""

from __future__ import annotations

import secrets
from typing import Any

from .argtypes import describe_value
from .spec import Command
from .views import Code, Doc, Record, Text

# No 0/O, 1/I/L: codes are read off a screen and typed on a phone.
_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
CONFIRM_KEYS = frozenset({"✅", "✔️", "✔", "👍"})
CANCEL_KEYS = frozenset({"❌", "✖️", "👎"})


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    return text.strip().upper()


def normalise_key(key: str) -> str:
    """Reaction keys arrive with or without the emoji variation selector."""
    return key.replace("\ufe0f", "")


def describe_args(command: Command, args: dict[str, Any]) -> list[tuple[str, Any]]:
    """Each argument as the bot understood it; secrets hidden."""
    lines: list[tuple[str, Any]] = []
    for param in command.params:
        value = args.get(param.name)
        if value is None or value == []:
            continue
        lines.append((param.name, "(hidden)" if param.secret else describe_value(param.type, value)))
    for flag in command.flags:
        value = args.get(flag.dest)
        if value is None or value is False or value == [] or value == flag.default:
            continue
        shown = "(hidden)" if flag.secret else ("yes" if value is True else describe_value(flag.type, value))
        lines.append((flag.option, shown))
    return lines


def audit_args(command: Command, args: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in describe_args(command, args))


def prompt_view(
    command: Command, args: dict[str, Any], preview: Any, *, code: str | None, prefix: str, timeout_s: float
) -> Doc:
    what = Record(f"This will run: {command.name} — {command.summary}", describe_args(command, args))
    if code is None:
        footer = Text("Dry run: nothing was changed.", tone="info")
    else:
        minutes = max(1, round(timeout_s / 60))
        footer = Text(
            "To run it, send ", Code(f"{prefix} confirm {code}"), " or react ✅ to this message within "
            f"{minutes} min. To drop it: ", Code(f"{prefix} cancel {code}"), " or ❌.",
            tone="warning",
        )
    return Doc(what, preview, footer)
