"""Finding new reports: a durable cursor and a scan that neither skips nor repeats.

The report inbox: every new event or user report becomes one notice in each admin room, and
the moderation team works through them together — claim, resolve, dismiss, redact — by command
or by reaction. Each notice is edited on every change, so the room always shows the state.

Polling. Both list endpoints page with an OFFSET over `ORDER BY received_ts`, newest first, and
the order of reports filed in the same millisecond is not fixed. An offset is therefore no
cursor (it shifts whenever a report is filed or deleted: the incumbent bots re-post or skip).
The durable cursor here is the highest report id seen per kind, with its `received_ts`. A poll
reads newest-first pages until it meets a report that is both older than the cursor (by id) and
filed clearly before it (by time), collecting every id above the cursor. Pages overlap at a
group of reports that share a timestamp, and a scan during which reports were deleted (the
`total` shrank: the pages shifted up) is repeated, so none is skipped. The new reports and the
moved cursor are written in one sqlite transaction, and a report is queued for posting only
from the "none" state: each is posted once, across pages, deletions and restarts. Notices are
sent with a transaction ID derived from the report, so a crash between sending and recording
does not post twice either (the homeserver answers a repeated transaction with the first event).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import field, replace
from typing import Any, TypeVar

from bot.homeserver.admin_api.models import Page
from bot.records import record

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
# A report filed up to this long before the cursor's own time is still looked at: the order by
# received_ts and the order by id can disagree when the homeserver's clock is stepped back.
CLOCK_SLACK_MS = 30_000
SCAN_ATTEMPTS = 3


@record
class Cursor:
    """The newest report seen: its id, and the newest received_ts seen."""

    id: int
    ts: int

    def dump(self) -> str:
        return json.dumps({"id": self.id, "ts": self.ts})

    @classmethod
    def load(cls, text: str) -> Cursor:
        data = json.loads(text)
        return cls(int(data["id"]), int(data["ts"]))

    def advanced(self, items: Iterable[Any]) -> Cursor:
        ids, stamps = [self.id], [self.ts]
        for item in items:
            ids.append(int(item.id))
            stamps.append(int(item.received_ts))
        return Cursor(max(ids), max(stamps))


@record
class StartPoint:
    """Where the inbox began watching: the bot's first start, recorded before its first poll.
    `ids` holds, per kind, the newest report id on the homeserver at that moment (reports above it
    were filed after the start and each get a notice; those at or below it are history); a kind
    the homeserver did not answer for then is placed by `ts` when it first does. `totals` counts
    the history, `announced` says whether the start notice went out."""

    ts: int
    ids: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    announced: bool = False

    def dump(self) -> str:
        return json.dumps({"ts": self.ts, "ids": self.ids, "totals": self.totals, "announced": self.announced})

    @classmethod
    def load(cls, text: str) -> StartPoint:
        data = json.loads(text)
        return cls(int(data["ts"]), {str(k): int(v) for k, v in (data.get("ids") or {}).items()},
                   {str(k): int(v) for k, v in (data.get("totals") or {}).items()}, bool(data.get("announced")))

    def placed(self, kind: str, newest_id: int, total: int) -> StartPoint:
        return replace(self, ids={**self.ids, kind: newest_id}, totals={**self.totals, kind: total})


T = TypeVar("T")
PageFetcher = Callable[[int, int], Awaitable[Page[T]]]  # (offset, limit) → newest-first page


def tie_step(items: Sequence[Any]) -> int:
    """How far the next page may start: at the group of reports sharing the last timestamp, so that
    a group split across two pages is read whole even if the server orders it differently each
    time. 0 when the whole page is one such group."""
    last = items[-1].received_ts
    tail = 0
    for item in reversed(items):
        if item.received_ts != last:
            break
        tail += 1
    return len(items) - tail


async def scan_newer(fetch: PageFetcher[T], cursor: Cursor, page_size: int) -> list[T]:
    """Every report above the cursor, oldest first (see the module docstring)."""
    found: dict[int, T] = {}
    for attempt in range(1, SCAN_ATTEMPTS + 1):
        found = {}
        offset, limit, previous_total, shrank = 0, page_size, None, False
        while True:
            page = await fetch(offset, limit)
            if previous_total is not None and page.total is not None and page.total < previous_total:
                shrank = True
            previous_total = page.total
            reached_old = False
            for item in page.items:
                if item.id > cursor.id:  # type: ignore[attr-defined]
                    found[item.id] = item  # type: ignore[attr-defined]
                elif item.received_ts < cursor.ts - CLOCK_SLACK_MS:  # type: ignore[attr-defined]
                    reached_old = True
                    break
            if reached_old or not page.items or page.next_token is None:
                break
            step = tie_step(page.items)
            if step == 0 and limit < MAX_PAGE_SIZE:
                limit = min(limit * 2, MAX_PAGE_SIZE)  # one timestamp fills the page: read more of it at once
                continue
            offset += step or len(page.items)
            limit = page_size
        if not shrank:
            break
        log.info("reports were deleted while paging (attempt %d); reading again", attempt)
    return [found[key] for key in sorted(found)]
