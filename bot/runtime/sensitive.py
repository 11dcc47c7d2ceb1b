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
_JOINERS = re.compile(r"[-./:]+")
# Words in front of a command that are looked behind: `help`, `event`, an unknown group.
MAX_WRAPPERS = 2


def _words(text: str, count: int = 2) -> list[str]:
    cleaned = _QUOTES_AND_ESCAPES.sub("", untrusted.strip_invisible(text[:1000]))
    return [w.lower().replace("_", "-") for w in cleaned.split()[:count]]


def _unjoin(words: list[str], table: CommandTable) -> list[str]:
    """`user-create`, `user.reset-password`: a group joined to its verb is two words."""
    out: list[str] = []
    for word in words:
        parts = [p for p in _JOINERS.split(word) if p]
        if len(parts) > 1 and table.group(parts[0]) is not None:
            out += [parts[0], "-".join(parts[1:])]
        else:
            out.append(word)
    return out


def _closest(word: str, options: dict[str, list[Command]], cutoff: float) -> list[Command]:
    found = difflib.get_close_matches(word, list(options), n=1, cutoff=cutoff)
    return options[found[0]] if found else []


def _secret_of(commands: list[Command]) -> Command | None:
    return next((c for c in commands if c.secret_names), None)


def _named_at(words: list[str], table: CommandTable) -> tuple[Command | None, int]:
    """What the words at the start of `words` name: (a command, how many words name it), or
    (None, 0) when they name nothing a command table holds (nearly, for a secret-bearing one)."""
    named, used = table.find(words)
    if named is not None:
        return named, used
    group = table.group(words[0])
    if group is None:
        close = difflib.get_close_matches(words[0], [g.name for g in table.command_groups()], n=1, cutoff=GROUP_CUTOFF)
        group = table.group(close[0]) if close else None
    if group is not None and len(words) > 1:
        by_verb: dict[str, list[Command]] = {}
        for c in group.commands:
            by_verb.setdefault(c.verb, []).append(c)
        best = _secret_of(_closest(words[1], by_verb, VERB_CUTOFF))
        if best is not None:
            return best, 2
    # No group (`!admin reset-password alice hunter2`, `!admin create carol S3cret`): a word that
    # reads as the verb of a secret-bearing command, whichever group it is in.
    verbs: dict[str, list[Command]] = {}
    for c in table.commands():
        if not c.top_level:
            verbs.setdefault(c.verb, []).append(c)
    best = _secret_of(_closest(words[0], verbs, GROUP_CUTOFF))
    return (best, 1) if best is not None else (None, 0)


def _secret_at(text: str, table: CommandTable) -> tuple[Command | None, int]:
    words = _unjoin(_words(text, MAX_WRAPPERS + 3), table)
    at = 0
    for _ in range(MAX_WRAPPERS + 1):
        if at >= len(words):
            return None, 0
        named, used = _named_at(words[at:], table)
        if named is not None and named.secret_names:
            return named, at + used
        if (named is not None and not named.top_level) or (named is None and table.group(words[at]) is not None):
            return None, 0  # another command (or a group's unknown verb); what follows are its arguments
        # A wrapper (`help …`, `event …`) or a word that names nothing (an unknown group): look behind it.
        at += used or 1
    return None, 0


def secret_command(text: str, table: CommandTable) -> Command | None:
    """The secret-bearing command that the first words of `text` (after the prefix) name, or
    nearly name, whatever wraps them (`help`, an unknown group) and however its group and verb are
    joined (`user-create`); None when they name another command or nothing like a secret-bearing one."""
    return _secret_at(text, table)[0]


def may_carry_secret(text: str, table: CommandTable, env: ParseEnv) -> Command | None:
    """The secret-bearing command `text` names (see `secret_command`), unless parsing it proves
    that no secret is in it (`user create alice`, `user reset-password --help`, `help user create`)."""
    command, used = _secret_at(text, table)
    if command is None:
        return None
    try:
        parsed = parse(text, table, env)
    except (CommandNotFound, UsageError, ArgumentError):
        return command
    after = [w for w in _unjoin(_words(text, 64), table)[used:] if w != HELP_FLAG.option]
    if isinstance(parsed, HelpRequest) or parsed.command is not command:
        # Help, or a wrapper around the command's words: nothing after them, no room for a secret.
        return command if after else None
    if any(parsed.args.get(name) not in (None, "", []) for name in parsed.command.secret_names):
        return command
    return None


def hidden_form(command: Command) -> str:
    """What the audit log and the replies say instead of the words of such a message."""
    return f"{command.name} (words hidden: the message may hold a password)"
