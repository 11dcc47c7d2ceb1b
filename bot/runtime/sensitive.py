"""Messages that may carry a secret, recognised before they are parsed.

A command that takes a password (`user create <user> [<password>]`, `user reset-password`, …:
every command with a parameter or option declared `secret=True`) must leave the room and never be
echoed on any path: when it parses, but also when its quotes do not balance, its verb is
misspelt (`user reset-pasword alice horse battery`), its arguments do not fit, it is stale, edited,
or sent by someone who may not run it. So it is recognised by its first words alone, with the same
did-you-mean distance that suggests a command for a misspelt one: a misspelt verb whose closest
verb is a secret-bearing one counts as that command.

The words are split leniently (quotes, backslashes and invisible characters ignored): the point is
to recognise the command even when the message cannot be parsed.
"""

from __future__ import annotations

import difflib
import re

from bot.text import untrusted
from bot.handler_api.argtypes import ArgumentError, ParseEnv
from bot.handler_api.parsing import HelpRequest, UsageError, CommandNotFound, parse
from bot.handler_api.spec import HELP_FLAG, Command, CommandTable

# As did-you-mean (bot/handler_api/spec.py CommandTable.suggest): a verb this close to a verb of its group
# is taken for it; a group word this close to a group, for that group.
VERB_CUTOFF = 0.5
GROUP_CUTOFF = 0.6
_QUOTES_AND_ESCAPES = re.compile(r"[\"'\\“”„‘’«»`]")


def _words(text: str, count: int = 2) -> list[str]:
    cleaned = _QUOTES_AND_ESCAPES.sub("", untrusted.strip_invisible(text[:1000]))
    return [w.lower() for w in cleaned.split()[:count]]


def _closest(word: str, options: dict[str, Command], cutoff: float) -> Command | None:
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return options[found[0]] if found else None


def secret_command(text: str, table: CommandTable) -> Command | None:
    """The secret-bearing command that the first words of `text` (after the prefix) name, or
    nearly name; None when they name another command or nothing like a secret-bearing one."""
    words = _words(text)
    if not words:
        return None
    named, _ = table.find(words)
    if named is not None:
        return named if named.secret_names else None
    if words[0] in table.top_level:
        return None
    group = table.group(words[0])
    if group is None:
        close = difflib.get_close_matches(words[0], [g.name for g in table.command_groups()], n=1, cutoff=GROUP_CUTOFF)
        group = table.group(close[0]) if close else None
    if group is not None and len(words) > 1:
        best = _closest(words[1], {c.verb: c for c in group.commands}, VERB_CUTOFF)
        return best if best is not None and best.secret_names else None
    # No group (`!admin reset-password alice hunter2`): any word that reads as a secret-bearing verb.
    verbs = {c.verb: c for c in table.commands() if not c.top_level}
    for word in words:
        best = _closest(word, verbs, GROUP_CUTOFF)
        if best is not None and best.secret_names:
            return best
    return None


def may_carry_secret(text: str, table: CommandTable, env: ParseEnv) -> Command | None:
    """The secret-bearing command `text` names (see `secret_command`), unless parsing it proves
    that no secret is in it (`user create alice`, `user reset-password --help`)."""
    command = secret_command(text, table)
    if command is None:
        return None
    try:
        parsed = parse(text, table, env)
    except (CommandNotFound, UsageError, ArgumentError):
        return command
    if isinstance(parsed, HelpRequest):
        # Nothing but the command's words and --help: no room for a secret.
        rest = [w for w in _words(text, 64)[2:] if w != HELP_FLAG.option]
        return command if rest else None
    if any(parsed.args.get(name) not in (None, "", []) for name in parsed.command.secret_names):
        return command
    return None


def hidden_form(command: Command) -> str:
    """What the audit log and the replies say instead of the words of such a message."""
    return f"{command.name} (words hidden: the message may hold a password)"
