"""How to run an invocation this time (not part of what is stored), and the keyword arguments its
handler gets."""

from __future__ import annotations

from typing import Any

from bot.handler_api.invocation import Invocation
from bot.handler_api.parsing import PageRequest
from bot.records import record


@record
class RunOptions:
    """How to run an invocation this time: dry run, which page, export, and whether a plain success is quiet."""

    dry_run: bool = False
    page: PageRequest | None = None
    export: str | None = None
    tokens: tuple[str, ...] = ()  # the words typed, for the next-page hint
    quiet: bool = False  # a plain success gets no reply (a reaction's caller shows it)

    @classmethod
    def stored(cls, inv: Invocation, *, quiet: bool = False) -> RunOptions:
        """For an invocation that was not typed just now (built, confirmed, undone): the first page."""
        return cls(page=PageRequest() if inv.command.paged else None, quiet=quiet)


def handler_kwargs(inv: Invocation, page: PageRequest | None) -> dict[str, Any]:
    kwargs = inv.command.handler_args(inv.args)
    if inv.command.paged:
        kwargs["page"] = page or PageRequest()
    return kwargs
