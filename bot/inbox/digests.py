"""What the inbox posts on a schedule, beside the notices: the stats digest (`reports.digest`) and
the reminder of the reports that wait too long (`reports.reminder_after`/`reminder_every`). The
time of the last one of each is kept durably, so a restart posts neither twice."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.inbox.chart import Chart
from bot.inbox.delivery import RoomDelivery
from bot.inbox.stats import QueueStats, days_text
from bot.inbox.views import REMINDER_ROWS, reminder_view, stats_view
from bot.matrix.events import Messenger
from bot.records import now_ms
from bot.text.render import fit_content
from bot.text.schedule import Recurrence

if TYPE_CHECKING:
    from bot.state.meta import MetaStore
    from bot.state.reports import ReportStore

log = logging.getLogger("bot.inbox.inbox")

REMINDER_KEY = "reports.reminder.last"  # when the last reminder digest went out (ms)
DIGEST_KEY = "reports.digest.last"  # the period (its scheduled moment, ms) of the last stats digest posted


class QueueDigests:
    """The stats digest and the reminder, each posted to the admin rooms at most once per period."""

    def __init__(
        self,
        *,
        reports: ReportStore,
        meta: MetaStore,
        messenger: Messenger,
        delivery: RoomDelivery,
        stats: Callable[[int], Awaitable[QueueStats]],
        chart: Callable[[QueueStats], Awaitable[Chart]],
        prefix: str,
        digest: Recurrence | None,
        reminder_after: float,
        reminder_every: float,
    ) -> None:
        self.report_store = reports
        self.meta = meta
        self.messenger = messenger
        self.delivery = delivery
        self.stats = stats
        self.chart = chart
        self.prefix = prefix
        self.digest = digest
        self.reminder_after_ms = int(reminder_after * 1000)
        self.reminder_every_ms = int(reminder_every * 1000)
        self.reminders_checked = 0
        self.digests_checked = 0

    async def digest_if_due(self) -> bool:
        """`reports stats` posted to every admin room once per period of `reports.digest`: the
        period is written down before the posts (a crash in between loses one digest rather than
        posting it twice), and a restart inside the period posts nothing again. True when posted."""
        if self.digest is None:
            return False
        self.digests_checked += 1
        now = now_ms()
        period = self.digest.latest(now)
        last = await self.meta.get_meta(DIGEST_KEY)
        if last is not None and int(last) >= period:
            return False
        await self.meta.set_meta(DIGEST_KEY, str(period))
        stats = await self.stats(self.digest.period_days)
        title = (f"📊 {'Daily' if self.digest.weekday is None else 'Weekly'} report digest ({self.digest}): "
                 f"the last {days_text(stats.days)}")
        view = stats_view(stats, self.prefix, title=title)
        rooms = self.delivery.rooms()
        for room_id in rooms:
            await self.delivery.send(room_id, fit_content(view, self.delivery.form(room_id)), f"sab-reports-digest-{period}")
        send_file = getattr(self.messenger, "send_file", None)
        if send_file is not None and rooms:
            await self._send_chart(send_file, stats, rooms, f"sab-reports-digest-chart-{period}")
        return True

    async def _send_chart(self, send_file: Callable[..., Any], stats: QueueStats, rooms: Sequence[str], txn: str) -> None:
        """The digest's chart, after its numbers; a chart that cannot be drawn or sent is left out."""
        try:
            chart = await self.chart(stats)
        except Exception:
            log.exception("could not draw the digest's chart")
            return
        try:
            for room_id in rooms:
                try:
                    await send_file(room_id, path=chart.path, filename=f"reports-stats-{stats.days}d.png",
                                    mimetype="image/png", reply_to=None, thread_root=None, txn_id=txn, background=True,
                                    image={"w": chart.width, "h": chart.height, "body": chart.alt})
                except Exception as exc:
                    log.warning("could not send the digest's chart to %s: %s", room_id, exc)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(chart.path)

    async def remind_if_due(self) -> bool:
        """One digest of the reports that wait too long (open ones filed, claimed ones taken, more
        than `reminder_after` ago), at most once per `reminder_every`; the time of the last one is
        kept durably, so a restart does not remind twice. True when a digest went out."""
        if not self.reminder_after_ms or not self.reminder_every_ms:
            return False
        self.reminders_checked += 1
        now = now_ms()
        last = await self.meta.get_meta(REMINDER_KEY)
        if last is not None and now - int(last) < self.reminder_every_ms:
            return False
        cutoff = now - self.reminder_after_ms
        stale, total = await self.report_store.stale_reports(open_before=cutoff, claimed_before=cutoff, limit=REMINDER_ROWS)
        if not total:
            return False
        # Written before sending: a crash in between loses one digest rather than sending it twice.
        await self.meta.set_meta(REMINDER_KEY, str(now))
        view = reminder_view(stale, total, self.reminder_after_ms, now + self.reminder_every_ms, self.prefix)
        for room_id in self.delivery.rooms():
            await self.delivery.send(room_id, fit_content(view, self.delivery.form(room_id)), f"sab-reports-reminder-{now}")
        return True
