from __future__ import annotations

import html

from bot import docs

from bot.handler_api import helptext
from bot.text.render import render
from bot.handler_api.spec import Role
from commands import load_table


def test_docs_commands_md_matches_the_declarations() -> None:
    expected = docs.render(load_table())
    assert docs.DOCS_PATH.read_text() == expected, "docs/commands.md is stale: run `python -m bot.docs --write`"


def test_every_declared_admin_endpoint_exists_in_the_catalogue() -> None:
    catalogue = set()
    for entry in docs.load_catalogue():
        catalogue |= docs.variants(entry.endpoint)
    unknown = [
        (command.name, endpoint)
        for command in load_table().commands()
        for endpoint in command.endpoints
        if "/_synapse/admin/" in endpoint and docs.normalise(endpoint) not in catalogue
    ]
    assert unknown == []


def test_every_command_has_help_text_and_a_role() -> None:
    """`--help` and `help <group>` show what each declaration says: its summary, its role, and a
    real sentence for each argument (not just a word)."""
    table = load_table()
    for command in table.commands():
        assert isinstance(command.role, Role), command.name
        shown = render(helptext.command_help(command, "!admin")).body
        assert command.summary.strip() and command.summary in shown, command.name
        assert f"role: {command.role_label}" in shown, command.name
        for param in command.params:
            assert len(param.help.split()) >= 2 and param.help in shown, (command.name, param.name)
        for flag in command.flags:
            assert len(flag.help.split()) >= 2 and flag.help in shown, (command.name, flag.name)
        if command.top_level:  # `help` lists the bot's own verbs
            assert command.summary in html.unescape(render(helptext.topic_help(table, [], "!admin")).html)
            continue
        listing = html.unescape(render(helptext.topic_help(table, [command.group], "!admin")).html)
        assert command.summary in listing and command.usage("!admin") in listing, command.name


def test_every_declared_mas_operation_exists_in_the_mas_table() -> None:
    catalogue = {docs.normalise(e.endpoint) for e in docs.load_catalogue(docs.MAS_CATALOGUE_PATH)}
    declared = [(command.name, endpoint) for command in load_table().commands() for endpoint in command.endpoints
                if " /api/admin/v1/" in endpoint]
    assert declared, "no command declares a MAS operation"
    assert [d for d in declared if docs.normalise(d[1]) not in catalogue] == []


def test_every_mas_operation_is_offered_by_a_command_or_listed_with_a_reason() -> None:
    """Coverage of MAS is counted like Synapse's: docs/commands.md names each of its 47 operations."""
    mas_catalogue = docs.load_catalogue(docs.MAS_CATALOGUE_PATH)
    named, missing = docs.coverage(load_table(), mas_catalogue)
    assert len(mas_catalogue) == 47 and len(named) + len(missing) == 47
    assert [entry.endpoint for entry, reason in missing if reason == docs.NOT_YET] == []
    assert len(named) >= 38  # offered by a command; the rest have reasons (tokens into the room, MAS configuration…)
    text = docs.DOCS_PATH.read_text()
    for entry in mas_catalogue:
        assert f"`{entry.endpoint}`" in text or any(docs.normalise(entry.endpoint) == docs.normalise(e)
                                                      for c in load_table().commands() for e in c.endpoints)
