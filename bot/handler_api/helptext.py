"""Help, usage and error replies, generated from the command declarations."""

from __future__ import annotations

from collections.abc import Sequence

from bot.text import untrusted
from bot.homeserver.admin_api.errors import AdminAPIError
from bot.handler_api.spec import Command, CommandGroup, CommandTable
from bot.text.views import Code, Doc, Items, Preformatted, Record, Table, Text


def overview(table: CommandTable, prefix: str) -> Doc:
    # Key/value lines, not tables: a table's plain-text body clips long cells, and help names every verb in full.
    groups = [(g.name, f"{g.summary} — " + ", ".join(c.verb for c in g.commands)) for g in table.command_groups()]
    top = [(c.verb, f"{c.summary} ({c.role.label})") for c in table.top_level.values()]
    return Doc(
        Record("Command groups (group: what — verbs)", groups),
        Record("Other commands", top),
        Text("Details: ", Code(f"{prefix} help <group>"), " or ", Code(f"{prefix} <group> <verb> --help"), "."),
    )


def group_help(group: CommandGroup, prefix: str) -> Doc:
    rows = [
        [Code(c.usage(prefix)), c.summary, c.role_label, "" if c.confirm_label == "no" else c.confirm_label]
        for c in group.commands
    ]
    return Doc(Table(f"{group.name} — {group.summary}", ["usage", "what", "role", "confirm"], rows))


def command_help(command: Command, prefix: str) -> Doc:
    fields: list[tuple[str, object]] = [("role", command.role_label)]
    fields.append(("asks for confirmation", command.confirm_label))
    if command.undo_label != "—":
        reason = f": {command.irreversible}" if command.irreversible else ""
        fields.append(("undo", command.undo_label + reason))
    for param in command.params:
        raised = [f"{value}: needs {e.role.label}" for value, e in param.escalations.items() if e.role is not None and e.role > command.role]
        extra = "; " + "; ".join(raised) if raised else ""
        bounds = getattr(param.type, "bounds", None)
        extra = (f"; {bounds}" if bounds else "") + extra
        fields.append((f"<{param.name}>", f"{param.help} ({param.type.label}{', optional' if param.optional else ''}{extra})"))
    for flag in command.all_flags:
        label = flag.option if flag.is_switch else f"{flag.option} <{flag.type.label}>"
        extra = [part for part in (
            f"needs {flag.role.label}" if flag.role is not None and flag.role > command.role else "",
            "asks for confirmation" if flag.destructive and not command.destructive else "",
            "" if flag.is_switch else str(getattr(flag.type, "bounds", "") or ""),
        ) if part]
        fields.append((label, flag.help + (f" ({', '.join(extra)})" if extra else "")))
    if command.endpoints:
        fields.append(("calls", [Code(e) for e in command.endpoints]))
    blocks: list[object] = [
        Preformatted(command.usage(prefix)),
        Text(command.summary + (". " + command.details if command.details else "")),
        Record(None, fields),
    ]
    if command.examples:
        blocks.append(Items("Examples", [Code(f"{prefix} {e}") for e in command.examples]))
    return Doc(*blocks)


def topic_help(table: CommandTable, words: Sequence[str], prefix: str) -> Doc | Text:
    if not words:
        return overview(table, prefix)
    command, used = table.find([w.lower() for w in words])
    if command is not None:
        return command_help(command, prefix)
    group = table.group(words[0].lower())
    if group is not None:
        return group_help(group, prefix)
    return not_found(list(words), table.suggest([w.lower() for w in words]), prefix)


def not_found(words: Sequence[str], suggestions: Sequence[str], prefix: str) -> Text:
    typed = untrusted.inline(" ".join(words), 100) or "(nothing)"  # a 10 KB word is not echoed whole
    if suggestions:
        options: list[object] = []
        for index, suggestion in enumerate(suggestions):
            if index:
                options.append(" or ")
            options.append(Code(f"{prefix} {suggestion}"))
        return Text(f"Unknown command {typed!r}. Did you mean ", *options, "? ", "All commands: ", Code(f"{prefix} help"), ".", tone="error")  # type: ignore[arg-type]
    return Text(f"Unknown command {typed!r}. All commands: ", Code(f"{prefix} help"), ".", tone="error")


def usage_error(command: Command, message: str, prefix: str) -> Doc:
    return Doc(
        Text(f"{command.name}: {message}", tone="error"),
        Text("Usage: ", Code(command.usage(prefix)), " — more with ", Code(f"{prefix} {command.name} --help")),
    )


def api_error(exc: AdminAPIError) -> Text:
    hint = f" {exc.hint}" if exc.hint else ""
    return Text(Code(exc.errcode), f": {exc.error.rstrip('.')}.{hint}", tone="error")
