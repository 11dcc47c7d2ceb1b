from __future__ import annotations

from bot import docs
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
    for command in load_table().commands():
        assert command.summary and command.role, command.name
        for param in command.params:
            assert param.help, (command.name, param.name)
        for flag in command.flags:
            assert flag.help, (command.name, flag.name)
