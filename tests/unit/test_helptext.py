from __future__ import annotations

from bot.handler_api import helptext
from bot.handler_api.invocation import Invocation
from bot.runtime.confirm import prompt_view
from bot.text.render import render
from commands import load_table


def test_plain_text_help_lists_every_verb_of_every_group_in_full() -> None:
    table = load_table()
    rendered = render(helptext.overview(table, "!admin"))
    assert "…" not in rendered.body
    lines = {line.split(":", 1)[0]: line for line in rendered.body.splitlines() if ":" in line}
    for group in table.command_groups():
        verbs = lines[group.name].rsplit(" — ", 1)[1].split(", ")
        assert verbs == [command.verb for command in group.commands], group.name
    for command in table.top_level.values():
        assert command.verb in lines


def test_the_prompt_of_an_undo_says_what_the_undo_does_in_its_heading() -> None:
    table = load_table()
    lock = table.by_name["user lock"]
    inverse = Invocation(command=lock, args={"user": "@bob:hs.test", "undo": True}, requester="@a:hs.test",
                         room_id="!r:hs.test", event_id="$e", thread_root=None, undoes=12)
    first = render(prompt_view(inverse, None, code="ABCDEF", prefix="!admin", timeout_s=600)).body.splitlines()[0]
    assert first == "This will undo #12: user lock --undo — Unlock the account: it can log in again"
    typed = Invocation(command=lock, args={"user": "@bob:hs.test", "undo": True}, requester="@a:hs.test",
                       room_id="!r:hs.test", event_id="$e", thread_root=None)
    body = render(prompt_view(typed, None, code="ABCDEF", prefix="!admin", timeout_s=600)).body
    assert body.startswith("This will run: user lock --undo — Unlock the account: it can log in again")
    assert "Lock an account" not in body and "--undo: yes" not in body
    forward = Invocation(command=lock, args={"user": "@bob:hs.test", "undo": False}, requester="@a:hs.test",
                         room_id="!r:hs.test", event_id="$e", thread_root=None)
    assert render(prompt_view(forward, None, code="ABCDEF", prefix="!admin", timeout_s=600)).body.startswith(
        "This will run: user lock — Lock an account")
