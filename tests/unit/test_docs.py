from __future__ import annotations

import html

from bot import docs, helptext
from bot.render import render
from bot.spec import Role
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
