"""The Matrix side: nio AsyncClient, login/restore, E2EE store, our own sync loop, sending.

- The sync position is stored in sqlite only after the events of a batch have been handed over,
  and every event goes through the journal first, so nothing is handled twice after a restart.
- On a first start the room history is skipped: the bot answers what is said from now on.
- A homeserver that is down (connection failures, 502/503/504) is probed through the gate shared
  with the Admin API client (bot/homeserver/gate.py): one request per backoff step for the whole bot, and
  the sync that finds it back returns at once. Other errors (429, a refused token) are retried
  with the same backoff policy (bot/homeserver/backoff.py); the loop never spins and never exits on them.
- Invites are accepted only to admin rooms; others are declined.
- A sync that comes back 'limited' (a flood, or the bot was away) has its gap read back to the
  last sync, within a bound, so a command buried under other messages is still answered. Invites are handled off the sync
  loop, a few at a time, each with its own timeout: a decline that stalls (a remote server that
  never answers `send_leave`) or fails is logged and remembered, and `/sync` goes on meanwhile.
  Nothing an invite says (its stripped state is written by the inviting server) decides anything.
- No failure while handling one event ends the sync loop: it is logged, and the loop goes on.
- Admin room aliases are pinned at their first resolution (stored); an alias that later points
  elsewhere is a warning, never a new admin room.
- Replies to people go out before report notices (`background` sends wait for them).
- `send_direct` sends something to one person alone, in an encrypted direct room (generated secrets).
- Encrypted rooms work out of the box: keys live under the storage directory; an event that
  cannot be decrypted yet is retried for a short while (its key often arrives a moment later),
  then reported instead of being executed.
- The bot cross-signs its own device (bot/matrix/crypto.py), so that clients in "exclude insecure
  devices" mode share room keys with it and trust its replies; and it tells whether the device that
  sent a message is cross-signed by its owner.

MatrixClient keeps the sync loop and sending; each other concern is an object it constructs and
shares its state with: `session` (login, cross-signing set-up, bot/matrix/session.py), `invites`
(bot/matrix/invites.py), `lists` (policy list rooms, bot/matrix/policy_lists.py), `trust` (senders'
published keys, who gets room keys, bot/matrix/trust.py), `direct` (send_direct, bot/matrix/direct.py)
and `timeline` (what a sync brings to the admin rooms, bot/matrix/timeline.py). Settings, the error
type and the event sink live in bot/matrix/common.py and are importable from here too.

This module knows no command and no Admin API endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    KeysUploadResponse,
    RoomRedactResponse,
    RoomResolveAliasResponse,
    RoomSendResponse,
    SyncResponse,
    UploadResponse,
)
from nio.exceptions import EncryptionError, LocalProtocolError

from bot.config import Secret, TokenSource
from bot.homeserver.backoff import Backoff
from bot.homeserver.gate import GateClosed, HomeserverGate, Ticket
from bot.matrix.crypto.identity import CrossSigning, State
from bot.matrix.crypto.keys_api import KeysAPI, UserKeys
from bot.matrix.events import IncomingMessage, IncomingReaction
from bot.matrix.rooms import AdminRooms, MOVED, PINNED
from bot.state.identities import IdentityPins
from bot.state.journal import Journal
from bot.state.meta import MetaStore
from bot.text.ids import valid_room_id
from bot.text.render import file_content
from bot.matrix.common import (
    BACKGROUND_WAIT_S,
    CROSS_SIGNING_RETRY_S,
    DIRECT_READY_TIMEOUT_S,
    EventSink,
    GAP_PAGES,
    GAP_PAGE_SIZE,
    INVITE_KEY,
    INVITE_TASKS,
    INVITE_TIMEOUT_S,
    KEYS_UPLOAD_RETRY_MAX_S,
    KEYS_UPLOAD_RETRY_S,
    MAX_OPEN_INVITES,
    MatrixError,
    NOT_READY,
    NO_TRUSTED_DEVICE,
    PINS_KEY,
    SEND_WAIT_FOR_HOMESERVER_S,
    SEND_WAIT_FOR_SYNC_S,
    SESSION_KEY,
    SETTLE_WAIT_S,
    SYNC_FILTER,
    SYNC_TOKEN_KEY,
    UNDECRYPTABLE_GRACE_S,
    strip_reply_fallback,
    _Pending,
    _error_of,
)
from bot.matrix.direct import DirectMessages
from bot.matrix.invites import Invites
from bot.matrix.policy_lists import PolicyLists
from bot.matrix.session import Session
from bot.matrix.timeline import Timeline
from bot.matrix.trust import KeyTrust

log = logging.getLogger(__name__)


class MatrixClient:
    def __init__(
        self,
        *,
        homeserver_url: str,
        user_id: str,
        token: TokenSource | None,
        password: Secret | None,
        device_id: str | None,
        device_name: str,
        meta: MetaStore,
        journal: Journal,
        identities: IdentityPins | None = None,
        crypto_dir: Path | None,
        admin_rooms: AdminRooms,
        sync_timeout_ms: int = 30_000,
        undecryptable_grace_s: float = UNDECRYPTABLE_GRACE_S,
        backoff: Backoff | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        gate: HomeserverGate | None = None,
        invite_timeout_s: float = INVITE_TIMEOUT_S,
        on_secret: Callable[[str], None] | None = None,
        trusted_devices_only: bool = True,
        pin_identities: bool = True,
        policy_lists: Sequence[str] = (),
        on_policy_state: Callable[[str, list[dict[str, Any]]], Any] | None = None,
    ) -> None:
        self.user_id = user_id
        # `encryption.require_cross_signed_senders` (and `pin_identities`): room keys, so replies and
        # notices, go only to devices their owners cross-signed (with the pinned identity).
        self.trusted_devices_only = trusted_devices_only
        self.pin_identities = pin_identities
        self._secret_rooms: set[str] = set()  # the direct rooms that carry secrets (send_direct)
        # Policy list rooms (config `policy_lists`): joined (on invite, or directly when public) and
        # read only — their state goes to `on_policy_state`; nothing there is a command, and the bot
        # never sends there. IDs as configured or as their aliases resolved.
        self.policy_lists = tuple(policy_lists)
        self.policy_rooms: set[str] = {room for room in self.policy_lists if room.startswith("!")}
        self._on_policy_state = on_policy_state
        self._token = token
        self._password = password
        self._configured_device = device_id
        self._device_name = device_name
        self._meta = meta
        self._journal = journal
        self._identities = identities if identities is not None else IdentityPins(meta.db)
        self.admin_rooms = admin_rooms
        self._sync_timeout_ms = sync_timeout_ms
        self._undecryptable_grace_s = undecryptable_grace_s
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        # Shared with the Admin API client by the app: they find out together whether the
        # homeserver is back.
        self.gate = gate or HomeserverGate()
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._invite_timeout_s = invite_timeout_s
        self._invite_slots = asyncio.Semaphore(INVITE_TASKS)
        self._open_invites: set[str] = set()
        self._joining: set[str] = set()  # admin rooms joined but not yet seen in a sync
        self.invites_dropped = 0
        # Called with every secret the moment the bot learns it (the token of a password login), so
        # that the log scrubber knows it before anything can log it.
        self._on_secret = on_secret or (lambda secret: None)
        self._replies_sending = 0
        self._replies_done = asyncio.Condition()
        self._background = asyncio.Lock()
        self.encryption = crypto_dir is not None
        self._crypto_dir = crypto_dir
        self.cross_signing: CrossSigning | None = None
        # Set by the app when the token can be refreshed (OAuth on MAS): called after a 401.
        self.refresh_token: Callable[[], Awaitable[bool]] | None = None
        self._keys_api: KeysAPI | None = None
        self._sender_keys: dict[str, tuple[float, UserKeys]] = {}
        if crypto_dir is not None:
            crypto_dir.mkdir(parents=True, exist_ok=True)
            crypto_dir.chmod(0o700)
        config = AsyncClientConfig(
            encryption_enabled=self.encryption,
            store_sync_tokens=False,
            max_limit_exceeded=3,
            # No immediate retry of a failed connection inside nio: the gate decides when the
            # homeserver is tried again (else each probe of a dead homeserver costs two requests).
            # A kept-alive connection the server closed is retried by aiohttp itself.
            max_timeouts=0,
            request_timeout=60,
        )
        self.client = AsyncClient(
            homeserver_url,
            user=user_id,
            device_id=device_id,
            store_path=str(crypto_dir) if crypto_dir else "",
            config=config,
        )
        self.last_sync_ok: float | None = None
        self.sync_failures = 0
        # True once the first sync of this run has been handled, keys included: from then on the bot
        # knows its rooms and the devices in them, and may post on its own (report notices).
        self.caught_up = False
        self._caught_up_event = asyncio.Event()
        self._keys_upload_backoff = Backoff(base=KEYS_UPLOAD_RETRY_S, cap=KEYS_UPLOAD_RETRY_MAX_S)
        self._keys_upload_after = 0.0
        # Set once the work of a start that can wait for the first answers is done (cross-signing).
        self._settled = asyncio.Event()
        self.session = Session(self)
        self.invites = Invites(self)
        self.lists = PolicyLists(self)
        self.trust = KeyTrust(self)
        self.direct = DirectMessages(self)
        self.timeline = Timeline(self)

    # -- login

    async def login(self) -> None:
        """See session.login."""
        await self.session.login()

    @property
    def device_id(self) -> str:
        return str(self.client.device_id)

    def admin_rooms_being_joined(self) -> list[str]:
        """Admin rooms the bot was invited to and is joining right now (not in them yet)."""
        return [room for room in self.admin_rooms
                if (room in self._open_invites or room in self._joining) and room not in self.client.rooms]

    async def resolve_admin_rooms(self) -> list[str]:
        """Resolve the configured aliases on the homeserver and pin each at its first resolution;
        returns the aliases that are neither resolved nor pinned."""
        stored = await self._meta.get_meta(PINS_KEY)
        if stored:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                self.admin_rooms.load_pins({str(k): str(v) for k, v in json.loads(stored).items()})
        missing = []
        for alias in self.admin_rooms.aliases:
            response = await self.client.room_resolve_alias(alias)
            room_id = getattr(response, "room_id", None) if isinstance(response, RoomResolveAliasResponse) else None
            if not valid_room_id(room_id):
                if room_id is not None:
                    log.warning("the homeserver answered admin room alias %s with %r, which is not a room ID", alias,
                                str(room_id)[:80])
                if alias not in self.admin_rooms.pins:
                    missing.append(alias)
                continue
            outcome = self.admin_rooms.resolved(alias, str(room_id))
            if outcome == PINNED:
                await self._meta.set_meta(PINS_KEY, json.dumps(self.admin_rooms.pins, sort_keys=True))
                log.info("admin room alias %s is %s (pinned)", alias, room_id)
            elif outcome == MOVED:
                for warning in self.admin_rooms.warnings():
                    log.warning("%s", warning)
        return missing

    # -- the sync loop

    async def run(self, sink: EventSink, stop: asyncio.Event) -> None:
        since = await self._meta.get_meta(SYNC_TOKEN_KEY)
        first_start = since is None
        # The first sync of every run returns at once with the full state of the joined rooms: nio
        # keeps rooms in memory only, and must know them (and whether they are encrypted) before
        # the bot posts anything on its own, e.g. a report notice right after a restart.
        catching_up = True
        unresolved = list(self.admin_rooms.aliases)
        while not stop.is_set():
            if unresolved:
                unresolved = await self._resolve_quietly()
            response = await self._sync_once(since, catching_up, stop)
            if response is None:
                continue
            self.invites._queue_invites(response)
            self._joining.difference_update(self.client.rooms)
            self.lists._feed_policy_lists(response)
            for user_id in response.device_list.changed:
                self._sender_keys.pop(user_id, None)
            if not first_start:
                await self.timeline._handle_timeline(response, sink, since)
            await self._guarded(self._after_sync(), "key maintenance")
            since = response.next_batch
            if catching_up:
                self._spawn(self._settle(set(self._tasks)))
            first_start = catching_up = False
            self.caught_up = True
            self._caught_up_event.set()
            await self._meta.set_meta(SYNC_TOKEN_KEY, since)
            await self._guarded(self.timeline._retry_pending(sink), "retrying undecrypted events")

    async def _settle(self, first_answers: set[asyncio.Task[Any]]) -> None:
        """After the first sync: once the commands it brought are answered (or after a while), the
        start's deferred work — the cross-signing identity."""
        try:
            if first_answers:
                await asyncio.wait(first_answers, timeout=SETTLE_WAIT_S)
            if self.encryption and self.cross_signing is None:
                await self._guarded(self.session._setup_cross_signing(), "cross-signing set-up")
        finally:
            self._settled.set()

    async def settled(self) -> None:
        """Wait until the first sync is handled and the start's deferred work is done."""
        await self._settled.wait()

    @staticmethod
    async def _guarded(work: Awaitable[Any], what: str) -> None:
        """Run one step of the loop; a failure is logged and the loop goes on."""
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; the sync loop goes on", what)

    async def _resolve_quietly(self) -> list[str]:
        try:
            return await self.resolve_admin_rooms()
        except Exception:
            return list(self.admin_rooms.aliases)

    async def _sync_once(self, since: str | None, catching_up: bool, stop: asyncio.Event) -> SyncResponse | None:
        ticket = await self._pass_gate(stop)
        if ticket is None:
            return None
        # A probe must come back at once: a long-poll would keep the whole bot waiting for news.
        quick = catching_up or ticket.probe
        sync = asyncio.ensure_future(
            self.client.sync(
                timeout=0 if quick else self._sync_timeout_ms,
                since=since,
                full_state=catching_up or None,
                sync_filter=SYNC_FILTER,
            )
        )
        stopper = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait({sync, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if sync not in done:
                ticket.release()
                return None
            response = sync.result()
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError) as exc:
            self._unreachable(ticket, f"cannot reach the homeserver ({type(exc).__name__})")
            return None
        except BaseException:
            ticket.release()
            raise
        finally:
            # Also on cancellation: a long-poll left running would outlive the bot.
            for future in (sync, stopper):
                if not future.done():
                    future.cancel()
            await asyncio.gather(sync, stopper, return_exceptions=True)
        if isinstance(response, SyncResponse):
            ticket.ok()
            self._backoff.reset()
            self.last_sync_ok = time.time()
            return response
        http_status = getattr(getattr(response, "transport_response", None), "status", None)
        if http_status is None or http_status in (502, 503, 504):
            self._unreachable(ticket, f"sync failed: HTTP {http_status or '?'}")
            return None
        ticket.ok()  # the homeserver answered: it is up, it just refused this sync
        status = str(getattr(response, "status_code", "") or "")
        retry_ms = getattr(response, "retry_after_ms", None)
        if status in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN") and self._token is not None:
            renewed = self._token.reload()  # a token file rotated from outside wins
            if not renewed and self.refresh_token is not None:
                renewed = await self.refresh_token()
            current = self._token.current()
            if renewed and current is not None:
                self.client.access_token = current.reveal()
                log.info("the homeserver refused the bot's token; using the renewed one")
                return None
            log.error("the homeserver refuses the bot's access token (%s); run `synapse-admin-bot login` "
                      "and restart, or update the token file", status)
        message = getattr(response, "message", "") or status or type(response).__name__
        await self._sync_failed(f"sync failed: {message}", retry_ms / 1000 if retry_ms else None, stop)
        return None

    async def _pass_gate(self, stop: asyncio.Event) -> Ticket | None:
        """Leave to sync, or None when the bot stops while the homeserver is held to be down."""
        admit = asyncio.ensure_future(self.gate.health.admit())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({admit, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (admit, stopper):
                if not future.done():
                    future.cancel()
            await asyncio.gather(admit, stopper, return_exceptions=True)
        if admit.cancelled() or admit.exception() is not None:
            return None
        ticket = admit.result()
        if stop.is_set():
            ticket.release()
            return None
        return ticket

    def _unreachable(self, ticket: Ticket, reason: str) -> None:
        """The gate spaces the next try (and every Admin API request's) on the shared backoff."""
        self.sync_failures += 1
        ticket.failed(detail=reason)
        hold = self.gate.health.hold()
        wait = hold.seconds_left(self.gate.clock.wall()) if hold is not None else 0.0
        log.warning("%s; next try in %.1fs", reason, wait)

    async def _sync_failed(self, reason: str, hint: float | None, stop: asyncio.Event) -> None:
        self.sync_failures += 1
        delay = self._backoff.next_delay(hint)
        log.warning("%s; retrying in %.1fs", reason, delay)
        if self._sleep is not None:
            await self._sleep(delay)
            return
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
        except asyncio.TimeoutError:
            pass

    # -- invites: off the loop, bounded, remembered

    # -- policy lists: joined, read, never written to

    async def follow_policy_lists(self) -> list[str]:
        """See lists.follow_policy_lists."""
        return await self.lists.follow_policy_lists()

    # Off the sync loop: finding out whether the sender's device is cross-signed may need a request.

    async def device_trust(self, user_id: str, device_id: str, *, curve25519: str | None = None) -> bool | None:
        """See trust.device_trust."""
        return await self.trust.device_trust(user_id, device_id, curve25519=curve25519)

    async def tick_pending(self, sink: EventSink) -> None:
        """See timeline.tick_pending."""
        await self.timeline.tick_pending(sink)

    async def _after_sync(self) -> None:
        if not self.encryption:
            return
        try:
            if self.client.should_upload_keys and time.monotonic() >= self._keys_upload_after:
                response = await self.client.keys_upload()
                if isinstance(response, KeysUploadResponse):
                    self._keys_upload_backoff.reset()
                else:
                    # Refused (e.g. the homeserver holds other keys for this device: its crypto store was
                    # replaced). Signing and sending the keys after every sync would only burn CPU.
                    wait = self._keys_upload_backoff.next_delay()
                    self._keys_upload_after = time.monotonic() + wait
                    log.warning("the homeserver refused the device's keys (%s); trying again in %.0fs",
                                getattr(response, "message", response), wait)
            if self.client.should_query_keys:
                await self.client.keys_query()
            if self.client.should_claim_keys:
                await self.client.keys_claim(self.client.get_users_for_key_claiming())
            await self.client.send_to_device_messages()
        except (aiohttp.ClientError, asyncio.TimeoutError, LocalProtocolError) as exc:
            log.warning("key maintenance failed: %s", type(exc).__name__)
        signing = self.cross_signing
        if (signing is not None and signing.status is not None and signing.status.state == State.ERROR
                and time.monotonic() - signing.last_attempt > CROSS_SIGNING_RETRY_S):
            await signing.ensure()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event handler failed", exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for running handlers (on shutdown), then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()

    # -- sending (the Messenger of the dispatcher)

    def is_encrypted(self, room_id: str) -> bool:
        room = self.client.rooms.get(room_id)
        return bool(room and room.encrypted)

    async def send(
        self, room_id: str, content: dict[str, Any], event_type: str = "m.room.message", *, txn_id: str | None = None,
        background: bool = False,
    ) -> str:
        """Send an event; a repeated `txn_id` (same device, within the server's ~30 min transaction
        cache) returns the first event instead of sending a second one. `background` sends (report
        notices) go one at a time, and only while no reply is being sent: replies come first."""
        if room_id in self.policy_rooms:
            raise MatrixError(f"{room_id} is a policy list: the bot never writes there", errcode="M_FORBIDDEN")
        if not self._caught_up_event.is_set():
            # Jobs resumed at start-up may want to edit before nio knows the room (first sync).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._caught_up_event.wait(), timeout=SEND_WAIT_FOR_SYNC_S)
        if background:
            async with self._background:
                await self._replies_quiet()
                return await self._room_send(room_id, event_type, content, txn_id)
        self._replies_sending += 1
        try:
            return await self._room_send(room_id, event_type, content, txn_id)
        finally:
            self._replies_sending -= 1
            async with self._replies_done:
                self._replies_done.notify_all()

    async def _replies_quiet(self) -> None:
        """Until no reply is being sent (at most BACKGROUND_WAIT_S: notices are never starved)."""
        async with self._replies_done:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._replies_done.wait_for(lambda: self._replies_sending == 0),
                                       timeout=BACKGROUND_WAIT_S)

    async def _room_send(self, room_id: str, event_type: str, content: dict[str, Any], txn_id: str | None) -> str:
        deadline = time.monotonic() + SEND_WAIT_FOR_SYNC_S
        while room_id in self._joining and room_id not in self.client.rooms and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # an admin room being joined right now: wait for the join and its sync
        # While the homeserver is held to be down, a reply or a job's edit waits for its return
        # (one probe for the whole bot) instead of knocking on its own.
        try:
            ticket = await self.gate.health.admit(max_wait=SEND_WAIT_FOR_HOMESERVER_S)
        except GateClosed as closed:
            # Like a 503: the homeserver's state, not the message's (the report inbox tries it again).
            raise MatrixError(f"sending to {room_id} failed: the homeserver is {closed.hold.reason.value}",
                              status=503) from None
        try:
            if self.encryption and self.is_encrypted(room_id):
                await self.trust._choose_key_holders(room_id)
            response = await self.client.room_send(room_id, event_type, content, tx_id=txn_id,
                                                   ignore_unverified_devices=True)
        except (LocalProtocolError, EncryptionError) as exc:
            ticket.release()
            # nio does not know the room (yet), or its members or keys: the room's state, not the message's.
            raise MatrixError(f"sending to {room_id} failed: {exc}", errcode=NOT_READY) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, OSError) as exc:
            ticket.failed(detail=f"cannot reach the homeserver ({type(exc).__name__})")
            raise
        except BaseException:
            ticket.release()
            raise
        if not isinstance(response, RoomSendResponse):
            http_status = getattr(getattr(response, "transport_response", None), "status", None)
            if http_status is None or http_status in (502, 503, 504):
                ticket.failed(detail=f"sending failed: HTTP {http_status or '?'}")
            else:
                ticket.ok()
            raise _error_of(response, f"sending to {room_id} failed")
        ticket.ok()
        return str(response.event_id)

    # -- who gets the room keys

    # -- a message to one person alone

    async def send_direct(self, user_id: str, content: dict[str, Any], *,
                          timeout: float = DIRECT_READY_TIMEOUT_S) -> tuple[str, str]:
        """See direct.send_direct."""
        return await self.direct.send_direct(user_id, content, timeout=timeout)

    async def direct_problem(self, user_id: str) -> str | None:
        """See direct.direct_problem."""
        return await self.direct.direct_problem(user_id)

    async def redact(self, room_id: str, event_id: str, reason: str) -> bool:
        response = await self.client.room_redact(room_id, event_id, reason=reason)
        return isinstance(response, RoomRedactResponse)

    async def send_file(
        self, room_id: str, *, path: str, filename: str, mimetype: str, reply_to: str | None, thread_root: str | None,
        txn_id: str | None = None, image: dict[str, Any] | None = None, background: bool = False,
    ) -> str:
        size = Path(path).stat().st_size
        encrypt = self.is_encrypted(room_id)
        with open(path, "rb") as handle:
            response, keys = await self.client.upload(
                handle, content_type=mimetype, filename=filename, encrypt=encrypt, filesize=size
            )
        if not isinstance(response, UploadResponse):
            raise MatrixError(f"upload failed: {getattr(response, 'message', response)}")
        file_info = None
        if encrypt and keys:
            file_info = {**keys, "url": response.content_uri}
        content = file_content(
            filename=filename, mimetype=mimetype, size=size, url=response.content_uri, file_info=file_info,
            reply_to=reply_to, thread_root=thread_root, image=image,
        )
        return await self.send(room_id, content, txn_id=txn_id, background=background)

    async def fetch_event(self, room_id: str, event_id: str) -> IncomingMessage | IncomingReaction | None:
        """See timeline.fetch_event."""
        return await self.timeline.fetch_event(room_id, event_id)

    async def joined_rooms(self) -> list[str]:
        response = await self.client.joined_rooms()
        return list(getattr(response, "rooms", []))

    async def close(self) -> None:
        await self.drain()
        if self._keys_api is not None:
            await self._keys_api.aclose()
        await self.client.close()


__all__ = ["MatrixClient", "EventSink", "MatrixError", "strip_reply_fallback", "EncryptionError"]
