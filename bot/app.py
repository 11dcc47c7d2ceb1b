"""The composition root: the only place that knows every part and wires them together (the parts
the CLI needs too are built by bot/wiring.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from bot import wiring
from bot.policy.access import Access
from bot.matrix.rooms import AdminRooms
from bot.homeserver.admin_api import AdminAPI
from bot.homeserver.admin_api.errors import AdminAPIError
from bot.homeserver.concurrency import AdaptiveConcurrency
from bot.config import Config, ConfigError, LIVE_KEYS, live_changes, load_raw, parse, restart_needed
from bot.runtime.dispatcher import Dispatcher
from bot.homeserver.gate import HomeserverGate
from bot.handler_api.argtypes import ParseEnv
from bot.records import now_ms
from bot.runtime.jobs import JobRunner
from bot.runtime.jobs.undo import JobUndo
from bot.runtime.undo import UndoBook
from bot.homeserver.login import TokenRefresher
from bot.logs import SecretScrubber
from bot.mas import MASDetection, detect_mas
from bot.homeserver.mas_api import MASAPI
from bot.matrix.client import MatrixClient
from bot.metrics import Metrics
from bot.policy.rules import Policy
from bot.runtime import oplog
from bot.inbox.policy_lists import PolicyBook
from bot.runtime.refusals import RefusalLimiter
from bot.inbox.inbox import ReportInbox
from bot.handler_api.services import ReportDesk
from bot.handler_api.spec import CommandTable
from bot.state.db import Database
from bot.state.stores import Stores

log = logging.getLogger(__name__)

VOICE_TIMEOUT_S = 10.0  # how long the start waits for the homeserver to lift the bot's rate limit

HOUSEKEEPING_INTERVAL_S = 2.0
JOURNAL_RETENTION_MS = 30 * 86_400_000
READY_JOIN_WAIT_S = 15.0


class App:
    def __init__(
        self,
        config: Config,
        *,
        table: CommandTable | None = None,
        admin_transport: httpx.AsyncBaseTransport | None = None,
        job_poll_interval: float = 1.0,
        job_edit_interval: float = 2.0,
        job_batch_size: int | None = None,
        undecryptable_grace_s: float | None = None,
        report_page_size: int | None = None,
        report_flood_window_s: float | None = None,
        scrubber: SecretScrubber | None = None,
        oauth_transport: httpx.AsyncBaseTransport | None = None,
        matrix_options: dict[str, Any] | None = None,
        mas_transport: httpx.AsyncBaseTransport | None = None,
        refusal_window_s: float | None = None,
        timer_interval: float = 1.0,
        config_path: Path | None = None,
    ) -> None:
        self._timer_interval = timer_interval  # how often due timers are looked for (bot/runtime/timers.py)
        if table is None:
            from commands import load_table

            table = load_table()
        wiring.check_commands(config, table)  # a ConfigError, as from loading the file
        self.config = config
        self.table = table
        self._admin_transport = admin_transport
        self._job_poll_interval = job_poll_interval
        self._job_edit_interval = job_edit_interval
        self._job_options: dict[str, Any] = {} if job_batch_size is None else {"batch_size": job_batch_size}
        self._matrix_options: dict[str, Any] = dict(matrix_options or {})
        if undecryptable_grace_s is not None:
            self._matrix_options["undecryptable_grace_s"] = undecryptable_grace_s
        self.stop_event = asyncio.Event()
        self.db: Database | None = None
        self.stores: Stores  # each part below is handed only the stores it needs
        self.api: AdminAPI
        self.matrix: MatrixClient
        self.jobs: JobRunner
        self.dispatcher: Dispatcher
        self.policy: Policy
        self._tasks: list[asyncio.Task[Any]] = []
        self._recovery: asyncio.Task[None] | None = None
        self._settling: asyncio.Task[None] | None = None
        self._report_page_size = report_page_size
        self._report_flood_window_s = report_flood_window_s
        self.reports: ReportInbox
        self.scrubber = scrubber or SecretScrubber()
        self._refreshers = wiring.Refreshers(on_lost=self._authentication_lost, transport=oauth_transport)
        self.refreshers: list[TokenRefresher] = self._refreshers.all
        self.metrics: Metrics | None = Metrics() if config.metrics.bind else None
        # One gate in front of the homeserver for every part of the bot: the sync loop, commands,
        # jobs and the report inbox hold back together on a 429 or while it is down.
        self.gate = HomeserverGate()
        self._mas_transport = mas_transport
        self._refusals = RefusalLimiter() if refusal_window_s is None else RefusalLimiter(window_s=refusal_window_s)
        self.mas: MASAPI | None = None
        self.mas_detection: MASDetection | None = None
        self.started_at = time.monotonic()
        self.stop_reason = "stopped"
        # SIGHUP reads this file again (reload): the document as last applied, to tell what changed.
        self.config_path = config_path
        self._raw: Any = load_raw(config_path) if config_path is not None else None
        self._reloading: asyncio.Task[None] | None = None
        self._announcing: asyncio.Task[None] | None = None

    def _env(self) -> ParseEnv:
        return ParseEnv(server_name=self.config.server_name, now_ms=now_ms())

    async def start(self) -> None:
        self.started_at = time.monotonic()
        config = self.config
        self.db, self.stores = await wiring.open_store(config)
        stores = self.stores
        admin_rooms = self.admin_rooms = AdminRooms(config.admin_rooms)
        access = self.access = Access(config.access, bot_user_id=config.bot.user_id, admin_rooms=admin_rooms)
        self.policy_book = PolicyBook(config.policy_lists)
        self.matrix = wiring.matrix_client(config, meta=stores.meta, journal=stores.journal, identities=stores.identities,
                                           admin_rooms=admin_rooms, on_secret=self.scrubber.add, gate=self.gate,
                                           policy_lists=config.policy_lists, on_policy_state=self.policy_book.update,
                                           **self._matrix_options)
        await self.matrix.login()
        self._watch_secrets()
        bot_refresher = self._refreshers.for_source(config.bot.token)
        if bot_refresher is not None:
            self.matrix.refresh_token = bot_refresher.on_unauthorized
        self.api = wiring.admin_api(
            config, session_token=lambda: str(self.matrix.client.access_token), refreshers=self._refreshers,
            transport=self._admin_transport, observer=self.metrics.observe_admin_api if self.metrics else None,
            gate=self.gate,
        )
        await self._start_mas()
        self.policy = Policy(access, self.api, server_name=config.server_name, mas=self.mas,
                             two_person=frozenset(config.approval.two_person))
        # The undo records, for the commands' undo and for what a job hands back when it is over.
        undo_book = UndoBook(stores.undo, stores.audit, self.table, self._env, config.command_prefix, jobs=stores.jobs)
        self.jobs = JobRunner(
            job_store=stores.jobs, api=self.api, policy=self.policy, table=self.table, server_name=config.server_name,
            sender=self.matrix, poll_interval=self._job_poll_interval, edit_interval=self._job_edit_interval,
            concurrency=AdaptiveConcurrency(ceiling=config.jobs.max_concurrency), gate=self.api.gate,
            mas=self.mas, mas_detection=self._detected, **self._job_options,
            undo=JobUndo(audit=stores.audit, book=undo_book, role_of=self.policy.role_of, api=self.api,
                         server_name=config.server_name, bot_user_id=config.bot.user_id, prefix=config.command_prefix,
                         clock=now_ms),
        )
        self.reports = self._report_inbox(admin_rooms, access)
        self.dispatcher = Dispatcher(
            table=self.table, policy=self.policy, api=self.api, confirmations=stores.confirmations, journal=stores.journal,
            audit=stores.audit, undo=stores.undo, job_store=stores.jobs, meta=stores.meta, messenger=self.matrix, jobs=self.jobs,
            prefix=config.command_prefix, server_name=config.server_name, bot_user_id=config.bot.user_id,
            confirm_timeout=config.confirmations.timeout,
            require_cross_signed_senders=config.encryption.require_cross_signed_senders,
            pin_identities=config.encryption.pin_identities, identity_pins=stores.identities, refusals=self._refusals,
            gate=self.api.gate, mas=self.mas, mas_detection=self._detected,
            report_desk=ReportDesk(self.reports, stores.reports), reaction_hooks=[self.reports.on_reaction],
            observers=[self.metrics.observe_command] if self.metrics is not None else [], undo_book=undo_book,
            timers=stores.timers, schedules=stores.schedules,
        )
        if config.reports.enabled:
            await self.reports.begin()  # the starting point, before the first poll (bot/inbox/inbox.py)
        self._start_metrics()
        await self.matrix.resolve_admin_rooms()
        if config.policy_lists:
            await self.matrix.follow_policy_lists()
        await self.jobs.resume_all()

    # -- secrets, token refresh and metrics (issue: deployment)

    def _watch_secrets(self) -> None:
        """Every token and password the bot holds is scrubbed from the logs, refreshed ones too."""
        config = self.config
        for source in (config.bot.token, config.admin_token):
            if source is not None:
                current = source.current()
                self.scrubber.add(current.reveal() if current else None)
                if source.oauth is not None:
                    self.scrubber.add(source.oauth.refresh_token.reveal())
                source.on_change(lambda secret: self.scrubber.add(secret.reveal()))
        if config.bot.password is not None:
            self.scrubber.add(config.bot.password.reveal())
        self.scrubber.add(str(self.matrix.client.access_token or ""))
        if config.bot.token is not None:
            # A refreshed or rotated bot token goes straight to the Matrix client.
            config.bot.token.on_change(lambda secret: setattr(self.matrix.client, "access_token", secret.reveal()))

    async def _authentication_lost(self, message: str) -> None:
        """Say it where the team looks; the log has it already. The room may be out of reach too."""
        from bot.text.render import notice_content, render
        from bot.text.views import Text

        content = notice_content(render(Text(f"I can no longer authenticate: {message}.", tone="error")))
        for room_id in self.matrix.admin_rooms:
            with contextlib.suppress(Exception):
                await self.matrix.send(room_id, content)

    async def _keep_voice(self) -> None:
        """Synapse applies its default message rate limit to server admins too: unless
        `rate_limits.exempt_bot: false`, the bot lifts its own (override_ratelimit 0/0) once the
        commands waiting at start are answered, so that a flood of notices never holds back its
        replies. Bounded, and never fails the start."""
        user_id = self.config.bot.user_id
        if not self.config.rate_limits.exempt_bot:
            log.info("rate_limits.exempt_bot is false: the bot keeps the homeserver's message rate limit")
            return
        try:
            current = await asyncio.wait_for(self.api.ratelimit(user_id), VOICE_TIMEOUT_S)
            if current is not None and current.messages_per_second == 0 and current.burst_count == 0:
                log.info("the bot's own message rate limit is lifted (override_ratelimit 0/0)")
                return
            await asyncio.wait_for(self.api.set_ratelimit(user_id, messages_per_second=0, burst_count=0), VOICE_TIMEOUT_S)
            log.info("lifted the bot's own message rate limit (override_ratelimit 0/0 for %s)", user_id)
        except (AdminAPIError, asyncio.TimeoutError) as exc:
            log.warning("could not lift the bot's own message rate limit (%s); under load the homeserver may hold "
                        "back its replies", getattr(exc, "errcode", None) or type(exc).__name__)

    async def _start_mas(self) -> None:
        """The MAS client when a `mas:` section is set, before the parts that are handed it: it reaches
        the commands as a typed Context service (`ctx.mas`), jobs alike; policy asks MAS who is an admin
        there. Building the client needs no network; its secrets reach the log scrubber before any
        request. Where the accounts live (`ctx.mas_detection`) is asked after the first sync's commands
        (`_settle`): it only words the advice on an Admin API endpoint a delegating homeserver lacks, and
        the parts read it through `_detected` when they need it.
        """
        config = self.config
        if config.mas is not None:
            self.mas = wiring.mas_client(config.mas, on_secret=self.scrubber.add, transport=self._mas_transport)

    def _detected(self) -> MASDetection | None:
        """Where the homeserver keeps its accounts, once `_detect_mas` has asked (None before)."""
        return self.mas_detection

    async def _detect_mas(self) -> None:
        config = self.config
        self.mas_detection = await detect_mas(config.homeserver.url, mas_url=config.mas.url if config.mas else None,
                                              transport=self._mas_transport)
        advice = self.mas_detection.advice()
        if advice is not None:
            log.warning("%s", advice)

    def _start_metrics(self) -> None:
        if self.metrics is None or self.config.metrics.bind is None:
            return
        self.metrics.watch(running_jobs=lambda: len(self.jobs.running()), last_sync_ok=lambda: self.matrix.last_sync_ok,
                           sync_failures=lambda: self.matrix.sync_failures)
        host, port = self.config.metrics.bind
        self.metrics.serve(host, port)
        log.info("metrics on http://%s:%d/metrics", host, port)

    def _report_inbox(self, admin_rooms: AdminRooms, access: Access) -> ReportInbox:
        """The report inbox (bot/inbox/): its commands and reactions work even when polling is off."""
        options: dict[str, Any] = {} if self._report_page_size is None else {"page_size": self._report_page_size}
        if self._report_flood_window_s is not None:
            options["flood_window"] = self._report_flood_window_s
        reports = self.config.reports
        return ReportInbox(
            api=self.api, reports=self.stores.reports, meta=self.stores.meta, messenger=self.matrix,
            admin_rooms=admin_rooms,
            prefix=self.config.command_prefix, poll_interval=reports.poll_interval,
            ready=lambda: self.matrix.caught_up, may_be_assigned=self.policy.may_be_assigned,
            reminder_after=reports.reminder_after, reminder_every=reports.reminder_every, gate=self.api.gate,
            policy=self.policy_book, digest=reports.digest,
            latency_observers=[self.metrics.observe_report_latency] if self.metrics is not None else [], **options,
        )

    async def run(self) -> None:
        """Sync and serve until `stop()` (or a signal) sets the stop event."""
        self._tasks = [
            asyncio.create_task(self.matrix.run(self.dispatcher, self.stop_event), name="sync"),
            asyncio.create_task(self._housekeeping(), name="housekeeping"),
            asyncio.create_task(self._timers(), name="timers"),
        ]
        # Not among the tasks whose end ends the bot: these are done once they have looked.
        self._recovery = asyncio.create_task(self._recover(), name="recover")
        self._settling = asyncio.create_task(self._settle(), name="settle")
        self._announcing = asyncio.create_task(self._announce_ready(), name="ready")
        if self.config.reports.enabled:
            self._tasks.append(asyncio.create_task(self.reports.run(self.stop_event), name="reports"))
        for refresher in self.refreshers:
            self._tasks.append(asyncio.create_task(refresher.run(self.stop_event), name="token-refresh"))
        done, _ = await asyncio.wait([*self._tasks, asyncio.create_task(self.stop_event.wait())], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task in self._tasks and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def _settle(self) -> None:
        """What a start defers until the commands waiting at start are answered (bot/matrix/client.py's
        `settled`: the cross-signing identity), then the bot's own message rate limit (a request, and
        the HTTP client's first: tens of milliseconds that the first answer need not wait for) and
        where the homeserver keeps its accounts."""
        await self.matrix.settled()
        await self._keep_voice()
        try:
            await self._detect_mas()
        except Exception:
            log.exception("asking the homeserver whether it delegates auth failed")

    async def ready(self) -> None:
        """Wait until the start's deferred work is done (tests look at its results)."""
        while self._settling is None:
            await asyncio.sleep(0.05)
        await asyncio.shield(self._settling)

    async def _announce_ready(self) -> None:
        """The operator's line once the first sync is in and an invitation it found has been accepted
        (or soon anyway); on the side, so that it holds back no command."""
        while not self.matrix.caught_up and not self.stop_event.is_set():
            await asyncio.sleep(0.1)
        waited = time.monotonic()
        while self.matrix.admin_rooms_being_joined() and time.monotonic() - waited < READY_JOIN_WAIT_S:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=0.1)
        if not self.stop_event.is_set():
            self._say_ready()

    async def _recover(self) -> None:
        """Once the first sync is in (rooms, keys): the commands a kill interrupted (bot/runtime/recovery.py)."""
        while not self.matrix.caught_up and not self.stop_event.is_set():
            await asyncio.sleep(0.1)
        if self.stop_event.is_set():
            return
        try:
            found = await self.dispatcher.recover(self.matrix.fetch_event)
        except Exception:
            log.exception("recovering interrupted commands failed")
            return
        if found:
            log.info("handled %d command(s) interrupted by the last stop", found)

    async def _timers(self) -> None:
        """Actions given --for end when their time is up (bot/runtime/timers.py); once the first sync
        is in, the ones that fell due while the bot was down (or were cut short by a kill) first."""
        timers, schedules = self.dispatcher.timers, self.dispatcher.schedules
        while not self.matrix.caught_up and not self.stop_event.is_set():
            await asyncio.sleep(0.1)
        for source in (timers, schedules):
            try:
                if source is not None:
                    await source.resume()
            except Exception:
                log.exception("resuming %s failed", type(source).__name__)
        while not self.stop_event.is_set():
            for source in (timers, schedules):  # the scheduled commands too (bot/runtime/schedules.py)
                try:
                    if source is not None:
                        await source.tick()
                except Exception:
                    log.exception("running what is due (%s) failed", type(source).__name__)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=self._timer_interval)

    def _say_ready(self) -> None:
        """The operator's one line: synced, in its admin rooms, the inbox started — it answers now."""
        rooms = list(self.matrix.admin_rooms)
        joined = [room for room in rooms if room in self.matrix.client.rooms]
        oplog.ready(user_id=self.config.bot.user_id, device_id=self.matrix.device_id, rooms=rooms, joined=joined,
                    reports=self.config.reports.enabled, jobs=len(self.jobs.running()),
                    seconds=time.monotonic() - self.started_at)

    async def _housekeeping(self) -> None:
        ticks = 0
        while not self.stop_event.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_event.wait(), timeout=HOUSEKEEPING_INTERVAL_S)
            if self.stop_event.is_set():
                return
            ticks += 1
            try:
                await self.dispatcher.expire_confirmations()
                await self.matrix.tick_pending(self.dispatcher)
                if self.metrics is not None:
                    self.metrics.pending_confirmations.set(len(await self.stores.confirmations.pending_confirmations()))
                if ticks % 1800 == 0:
                    await self.stores.journal.prune_events(JOURNAL_RETENTION_MS)
            except Exception:
                log.exception("housekeeping failed")

    # -- reload (SIGHUP)

    def request_reload(self) -> None:
        """SIGHUP: read the config file again and apply what can change live; one reload at a time."""
        if self.config_path is None or (self._reloading is not None and not self._reloading.done()):
            return
        if not hasattr(self, "reports"):
            log.warning("reload: SIGHUP while the bot is starting; send it again once it says it is ready")
            return
        self._reloading = asyncio.create_task(self.reload(), name="reload")

    async def reload(self) -> list[str]:
        """Apply `access`, `admin_rooms` and the report inbox's timings from the config file, and say what
        changed in the log and in the admin rooms; a change elsewhere is named as needing a restart.
        A config that does not load changes nothing. Returns the changes applied."""
        assert self.config_path is not None
        try:
            raw = load_raw(self.config_path)
            new = parse(raw, base_dir=self.config_path.resolve().parent, environ=os.environ)
        except ConfigError as exc:
            log.error("reload: config error: %s; the running config is kept", exc)
            await self._tell_admin_rooms(f"The config was not reloaded: {exc.key} is not valid (the bot's log says "
                                         "why); the running config is kept.", tone="error")
            return []
        except Exception:
            log.exception("reload failed; the running config is kept")
            return []
        changes = live_changes(self.config, new)
        restart = restart_needed(self._raw, raw)
        self.access.update(new.access)
        fresh_aliases = self.admin_rooms.reconfigure(new.admin_rooms)
        if fresh_aliases:
            try:
                await self.matrix.resolve_admin_rooms()
            except Exception:
                log.warning("reload: could not resolve %s yet; the sync loop tries again", ", ".join(fresh_aliases))
        self.reports.poll_interval = new.reports.poll_interval
        self.reports.digests.reminder_after_ms = int(new.reports.reminder_after * 1000)
        self.reports.digests.reminder_every_ms = int(new.reports.reminder_every * 1000)
        live_reports = dataclasses.replace(self.config.reports, **{name: getattr(new.reports, name)
                                                                    for name in LIVE_KEYS["reports"] or ()})
        self.config = dataclasses.replace(self.config, access=new.access, admin_rooms=new.admin_rooms, reports=live_reports)
        # What was applied becomes the reference; what was not stays as it runs, and is named again next time.
        old = self._raw if isinstance(self._raw, dict) else {}
        applied = dict(old)
        for key, live in LIVE_KEYS.items():
            if live is None:
                applied[key] = raw.get(key) if isinstance(raw, dict) else None
            else:
                section = dict(old.get(key) or {})
                section.update({name: (raw.get(key) or {}).get(name) for name in live} if isinstance(raw, dict) else {})
                applied[key] = section
        self._raw = applied
        oplog.reloaded(changes=changes, needs_restart=restart)
        said = ("The config was reloaded: " + "; ".join(changes) + "." if changes
                else "The config was reloaded: no change to access, admin rooms or report timings.")
        if restart:
            said += f" Needs a restart to take effect: {', '.join(restart)}."
        await self._tell_admin_rooms(said, tone="warning" if restart else "info")
        return changes

    async def _tell_admin_rooms(self, text: str, *, tone: str) -> None:
        from bot.text.render import notice_content, render
        from bot.text.views import Text

        if not hasattr(self, "matrix"):
            return
        content = notice_content(render(Text(text, tone=tone)))
        for room_id in self.matrix.admin_rooms:
            if room_id in self.matrix.client.rooms:
                try:
                    await self.matrix.send(room_id, content)
                except Exception:
                    log.warning("could not tell admin room %s about the reload", room_id, exc_info=True)

    def stop(self, reason: str = "stopped") -> None:
        if not self.stop_event.is_set():
            self.stop_reason = reason
        self.stop_event.set()

    async def close(self) -> None:
        self.stop_event.set()
        tasks = [*self._tasks, *(task for task in (self._recovery, self._settling, self._reloading, self._announcing)
                                 if task is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if hasattr(self, "jobs"):
            await self.jobs.stop()
        if hasattr(self, "matrix"):
            await self.matrix.close()
        if hasattr(self, "api"):
            await self.api.aclose()
        if self.mas is not None:
            await self.mas.aclose()
        if self.metrics is not None:
            self.metrics.close()
        if self.db is not None:
            await self.db.close()
            self.db = None


async def run_until_signalled(app: App) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, app.stop, f"{sig.name} received")
    loop.add_signal_handler(signal.SIGHUP, app.request_reload)
    try:
        await app.start()
        await app.run()
    except BaseException as exc:
        app.stop(f"failed: {type(exc).__name__}")
        raise
    finally:
        await app.close()
        oplog.stopped(reason=app.stop_reason, seconds=time.monotonic() - app.started_at)
