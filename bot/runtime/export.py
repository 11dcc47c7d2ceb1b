"""Exports (`--export csv|json`): every page of a listing streamed into a file, and the hint that
names the next page of a listing answered in the room."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import json
import os
import shlex
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from bot.handler_api.invocation import Invocation
from bot.handler_api.parsing import PageRequest
from bot.handler_api.spec import EXPORT_PAGE_SIZE
from bot.runtime.options import RunOptions, handler_kwargs
from bot.text.render import csv_value, plain_value
from bot.text.views import Attachment, Doc, Table, Text

if TYPE_CHECKING:
    from bot.handler_api.context import Context

# Rows written between looks at the event loop (the next page's answer comes in meanwhile), and
# the file's write buffer.
EXPORT_ROWS_BETWEEN_YIELDS = 100
EXPORT_WRITE_BUFFER = 1 << 16
# Pages of a listing paged by row offset asked for at once, ahead of the one being written.
PAGES_AHEAD = 2


async def export(ctx: Context, inv: Invocation, options: RunOptions) -> Attachment:
    """Fetch every page and stream the rows into a file, a few pages in memory at most: later pages
    are asked for while this one's rows are written (`_pages`)."""
    fmt = options.export or "csv"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    filename = f"{inv.name.replace(' ', '-')}-{stamp}.{fmt}"
    handle = tempfile.NamedTemporaryFile("w", suffix=f".{fmt}", delete=False, encoding="utf-8", newline="",
                                         buffering=EXPORT_WRITE_BUFFER)
    rows = 0
    columns: list[str] | None = None

    async def page_at(at: str | None) -> Table | None:
        page = PageRequest(from_token=at, limit=EXPORT_PAGE_SIZE, export=True)
        return _first_table(await inv.command.handler(ctx, **handler_kwargs(inv, page)))

    try:
        writer = csv.writer(handle) if fmt == "csv" else None
        if fmt == "json":
            handle.write("[")
        pages = _pages(page_at, options.page.from_token if options.page else None,
                       by_offset=inv.command.paged_by_offset)
        async with contextlib.aclosing(pages):  # a failure here cancels the pages asked for ahead
            async for table in pages:
                if columns is None:
                    columns = list(table.columns)
                    if writer is not None:
                        writer.writerow(columns)
                for index, row in enumerate(table.rows):
                    values = [csv_value(v) for v in row] if writer is not None else [plain_value(v) for v in row]
                    if writer is not None:
                        writer.writerow(values)
                    else:
                        record = json.dumps(dict(zip(columns, values)), ensure_ascii=False)
                        handle.write(("," if rows else "") + "\n" + record)
                    rows += 1
                    if index % EXPORT_ROWS_BETWEEN_YIELDS == EXPORT_ROWS_BETWEEN_YIELDS - 1:
                        await asyncio.sleep(0)  # the next pages' answers, and other commands, are read meanwhile
        if fmt == "json":
            handle.write("\n]\n")
    except BaseException:
        handle.close()
        os.unlink(handle.name)
        raise
    handle.close()
    mimetype = "text/csv" if fmt == "csv" else "application/json"
    return Attachment(filename=filename, path=handle.name, mimetype=mimetype, rows=rows,
                      caption=Text(f"Exported {rows:,} rows of {inv.name} as {filename}.", tone="ok"))


async def _pages(page_at: Callable[[str | None], Awaitable[Table | None]], token: str | None, *,
                 by_offset: bool = False) -> AsyncIterator[Table]:
    """Every page of a listing from `token`, in order, each asked for before the one before it is
    handed out: the next one as soon as its token is known. A listing paged by row offset (declared
    `paged_by_offset`) is asked for its first two pages at once, and once its total is known for the
    next PAGES_AHEAD at once (the homeserver answers them side by side: 5,000 accounts came 15–20 %
    sooner than one page after the other); pages past the total (rows added meanwhile) follow one
    by one."""
    coming: deque[tuple[str, asyncio.Future[Table | None]]] = deque()
    first = asyncio.ensure_future(page_at(token))
    guess = _offset_after(token) if by_offset else None
    if guess is not None:
        coming.append((guess, asyncio.ensure_future(page_at(guess))))
    try:
        table = await first
        if coming and (table is None or table.next_from != guess):
            await _drop(coming.popleft()[1])  # a last page, or pages of another size: the guess is no page
        asked = {at for at, _ in coming}
        planned = deque(at for at in _later_offsets(table, token) if by_offset and at not in asked)
        while table is not None:
            if planned:
                while planned and len(coming) < PAGES_AHEAD:
                    at = planned.popleft()
                    coming.append((at, asyncio.ensure_future(page_at(at))))
            elif not coming and table.next_from and table.next_from != token:
                coming.append((table.next_from, asyncio.ensure_future(page_at(table.next_from))))
            if coming:
                await asyncio.sleep(0)  # let the requests leave before the rows are written
            yield table
            if not coming:
                return
            token, future = coming.popleft()
            table = await future
    finally:
        for _, future in coming:
            future.cancel()
        await asyncio.gather(*(future for _, future in coming), return_exceptions=True)


def _offset_after(token: str | None) -> str | None:
    """The offset of the page after the one at `token`, for a listing paged by row offset."""
    if token is not None and not token.isdigit():
        return None
    return str(int(token or 0) + EXPORT_PAGE_SIZE)


async def _drop(future: asyncio.Future[Table | None]) -> None:
    future.cancel()
    await asyncio.gather(future, return_exceptions=True)


def _later_offsets(table: Table | None, token: str | None) -> list[str]:
    """The offsets of the pages after `table` (asked for at `token`) up to its total, for a listing
    paged by offset whose homeserver gave the page size asked for; none otherwise (one page after the
    other, by the homeserver's own tokens: a smaller page would otherwise leave rows out)."""
    if table is None or table.total is None or not (table.next_from or "").isdigit():
        return []
    if token is not None and not token.isdigit():
        return []
    after = int(table.next_from or 0)
    if after - int(token or 0) != EXPORT_PAGE_SIZE:
        return []
    return [str(at) for at in range(after, table.total, EXPORT_PAGE_SIZE)]


def with_next_hint(view: Any, options: RunOptions, prefix: str) -> Any:
    """A listing answered in the room ends with the command for its next page, as it was typed."""
    if not options.tokens:
        return view  # a stored invocation has no words to repeat; the table says `--from` itself
    if isinstance(view, Table) and view.next_from is not None:
        return dataclasses.replace(view, next_hint=_next_page_command(options.tokens, view.next_from, prefix))
    if isinstance(view, Doc):
        return Doc(*[with_next_hint(b, options, prefix) for b in view.blocks])
    return view


def _next_page_command(tokens: tuple[str, ...], next_from: str, prefix: str) -> str:
    words: list[str] = []
    skip = False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token == "--from":
            skip = True
            continue
        if token.startswith("--from="):
            continue
        words.append(token)
    words += ["--from", next_from]
    return " ".join([prefix] + [shlex.quote(w) for w in words])


def _first_table(view: Any) -> Table | None:
    if isinstance(view, Table):
        return view
    if isinstance(view, Doc):
        for block in view.blocks:
            found = _first_table(block)
            if found is not None:
                return found
    return None
