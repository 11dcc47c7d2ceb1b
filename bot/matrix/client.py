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

This module knows no command and no Admin API endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from nio import (
    AsyncClient,
    AsyncClientConfig,
    JoinError,
    KeysUploadResponse,
    LoginResponse,
    MegolmEvent,
    ReactionEvent,
    RoomMemberEvent,
    MessageDirection,
    RoomMessage,
    RoomMessagesResponse,
    RoomRedactResponse,
    RoomCreateResponse,
    RoomLeaveResponse,
    RoomPreset,
    RoomResolveAliasResponse,
    RoomSendResponse,
    RoomVisibility,
    SyncResponse,
    UploadResponse,
    WhoamiResponse,
)
from nio.exceptions import EncryptionError, LocalProtocolError

from bot.matrix.rooms import MOVED, PINNED, AdminRooms
from bot.homeserver.backoff import Backoff
from bot.config import Secret, TokenSource
from bot.matrix.crypto.identity import CrossSigning, State
from bot.matrix.crypto.keyfile import KEYS_FILE_NAME
from bot.matrix.crypto.keys_api import KeysAPI, KeysAPIError, UserKeys
from bot.matrix.events import IncomingMessage, IncomingReaction, UndecryptableMessage
from bot.homeserver.gate import GateClosed, HomeserverGate, Ticket
from bot.text.ids import valid_room_id
from bot.text.render import file_content, notice_content, render
from bot.state.identities import IdentityPins
from bot.state.journal import Journal
from bot.state.meta import MetaStore
from bot.text.views import Text

log = logging.getLogger(__name__)

SYNC_TOKEN_KEY = "sync.next_batch"
SESSION_KEY = "matrix.session"  # "user_id device_id access_token" after a password login
# A limited sync timeline is completed by reading back this far at most (pages of messages).
GAP_PAGES = 10
GAP_PAGE_SIZE = 100
GAP_FILTER: dict[str, Any] = {"types": ["m.room.message", "m.room.encrypted", "m.reaction"]}
UNDECRYPTABLE_GRACE_S = 8.0
SEND_WAIT_FOR_SYNC_S = 30.0
SEND_WAIT_FOR_HOMESERVER_S = 60.0
# Published keys of message senders are cached this long, and dropped when the homeserver says a
# user's devices changed; a device that does not look cross-signed in an answer older than
# SENDER_KEYS_RECHECK_S is looked up again.
SENDER_KEYS_CACHE_S = 300.0
SENDER_KEYS_RECHECK_S = 10.0
CROSS_SIGNING_RETRY_S = 60.0
KEYS_UPLOAD_RETRY_S = 30.0  # after the homeserver refused the device's keys, growing to …
KEYS_UPLOAD_RETRY_MAX_S = 3600.0
PINS_KEY = "adminrooms.pins"  # {alias: room_id} as first resolved
# Invites: at most INVITE_TASKS handled at once, each within INVITE_TIMEOUT_S; at most
# MAX_OPEN_INVITES waiting (a flood beyond is left for the next start). A decline that failed is
# tried again after INVITE_RETRY_S, INVITE_ATTEMPTS times in all, across restarts.
INVITE_KEY = "invite.{room_id}"
INVITE_TASKS = 4
INVITE_TIMEOUT_S = 30.0
MAX_OPEN_INVITES = 200
INVITE_RETRY_S = 600.0
INVITE_ATTEMPTS = 3
# The start's deferred work (cross-signing) waits at most this long for the first sync's commands.
SETTLE_WAIT_S = 10.0
# Declined invites are remembered (so as not to decline at every sync) for INVITE_RECORD_DAYS, at
# most MAX_INVITE_RECORDS of them: pruned at most every INVITE_PRUNE_EVERY_S, after a decline.
INVITE_RECORD_DAYS = 30
MAX_INVITE_RECORDS = 1000
INVITE_PRUNE_EVERY_S = 60.0
# Replies first: a background send waits at most this long for replies being sent.
BACKGROUND_WAIT_S = 10.0
DIRECT_ROOM_KEY = "direct.{user_id}"
DIRECT_READY_TIMEOUT_S = 30.0
MEGOLM = {"algorithm": "m.megolm.v1.aes-sha2"}
# Presence and ephemeral events (typing, receipts) are of no use to the bot.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {"ephemeral": {"not_types": ["*"]}, "timeline": {"limit": 50}, "account_data": {"not_types": ["*"]}},
}


class EventSink(Protocol):
    async def on_message(self, msg: IncomingMessage) -> None: ...

    async def on_reaction(self, reaction: IncomingReaction) -> None: ...

    async def on_undecryptable(self, event: UndecryptableMessage) -> None: ...

    # Optional: whether an event goes into the command journal (a command, or a reaction, from a
    # role holder; `body` None when not known). Without it, every message and reaction does.
    # def journals(self, room_id: str, sender: str, body: str | None) -> bool: ...


NO_TRUSTED_DEVICE = "M_BOT_NO_TRUSTED_DEVICE"  # errcode of a secret that no device may receive
NOT_READY = "M_BOT_NOT_READY"  # errcode of a send that failed on the bot's side: the room is not known (yet)


class MatrixError(RuntimeError):
    """A Matrix request failed in a way the caller should hear about. `errcode` and `status` are
    the homeserver's answer when there was one (the report inbox tells a refused message from a
    room it cannot reach by them)."""

    def __init__(self, message: str, *, errcode: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.errcode = errcode
        self.status = status


def _error_of(response: Any, what: str) -> MatrixError:
    transport = getattr(response, "transport_response", None)
    status = getattr(transport, "status", None)
    errcode = getattr(response, "status_code", None)
    return MatrixError(f"{what}: {getattr(response, 'message', response)}", errcode=str(errcode) if errcode else None,
                       status=status if isinstance(status, int) else None)


@dataclass
class _Pending:
    event: MegolmEvent
    room_id: str
    first_seen: float


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

    # -- login

    async def login(self) -> None:
        """Restore a session from a token (or a stored password session), or log in with the password."""
        if self._token is not None and self._token.current() is not None:
            await self._restore(self._token.current().reveal(), self._configured_device)  # type: ignore[union-attr]
        else:
            stored = await self._meta.get_meta(SESSION_KEY)
            if stored and await self._try_stored_session(stored):
                pass
            else:
                await self._password_login()
        self._save_new_encrypted_rooms_only()
        if self.encryption and self.client.should_upload_keys:
            await self.client.keys_upload()
        if self.encryption:
            # Who cross-signed a sender's device is asked from the first command on; the bot's own
            # cross-signing identity (a key query, signatures) is set up after the first sync and the
            # commands it brought: nothing before the first answer needs it (see `settled`).
            self._keys_api = KeysAPI(self.client.homeserver, lambda: str(self.client.access_token))

    def _save_new_encrypted_rooms_only(self) -> None:
        """nio writes the encrypted rooms it saw in a sync to its crypto store after every sync (a
        transaction on the event loop, under every command's round trip), although they are already
        there; only rooms not yet saved by this process are written (the table ignores duplicates)."""
        store = self.client.store
        if store is None:
            return
        save = store.save_encrypted_rooms
        saved: set[str] = set(self.client.encrypted_rooms)  # loaded from the store at login

        def save_new(rooms: Any) -> None:
            new = set(rooms) - saved
            if new:
                save(new)
                saved.update(new)

        store.save_encrypted_rooms = save_new

    async def _setup_cross_signing(self) -> None:
        """Create (first start) or reuse the bot's cross-signing identity and sign this device.

        Failing here does not stop the bot: it still works with clients in the default trust mode,
        and says in its log (and `check`) what is missing."""
        assert self._crypto_dir is not None and self._keys_api is not None
        olm = self.client.olm
        self.cross_signing = CrossSigning(
            self._keys_api,
            user_id=self.user_id,
            device_id=self.device_id,
            device_ed25519=olm.account.identity_keys["ed25519"] if olm is not None else None,
            path=self._crypto_dir / KEYS_FILE_NAME,
            password=lambda: self._password.reveal() if self._password is not None else None,
        )
        await self.cross_signing.ensure()

    async def _restore(self, token: str, device_id: str | None) -> None:
        self.client.access_token = token
        who = await self.client.whoami()
        if not isinstance(who, WhoamiResponse):
            raise MatrixError(f"the bot's access token was refused: {getattr(who, 'message', who)}")
        if who.user_id != self.user_id:
            raise MatrixError(f"the access token belongs to {who.user_id}, not to bot.user_id {self.user_id}")
        device = who.device_id or device_id
        if not device:
            raise MatrixError("the homeserver did not say which device this token belongs to; set bot.device_id")
        if device_id and who.device_id and device_id != who.device_id:
            log.warning("bot.device_id %s differs from the token's device %s; using the token's", device_id, who.device_id)
        self.client.restore_login(self.user_id, device, token)

    async def _try_stored_session(self, stored: str) -> bool:
        user_id, device_id, token = (stored.split(" ", 2) + ["", "", ""])[:3]
        if user_id != self.user_id or not token:
            return False
        try:
            await self._restore(token, device_id)
        except MatrixError:
            return False
        return True

    async def _password_login(self) -> None:
        if self._password is None:
            raise MatrixError("no usable access token and no password to log in with")
        response = await self.client.login(password=self._password.reveal(), device_name=self._device_name)
        if not isinstance(response, LoginResponse):
            raise MatrixError(f"password login failed: {getattr(response, 'message', response)}")
        self._on_secret(response.access_token)
        await self._meta.set_meta(SESSION_KEY, f"{response.user_id} {response.device_id} {response.access_token}")

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
            self._queue_invites(response)
            self._joining.difference_update(self.client.rooms)
            self._feed_policy_lists(response)
            for user_id in response.device_list.changed:
                self._sender_keys.pop(user_id, None)
            if not first_start:
                await self._handle_timeline(response, sink, since)
            await self._guarded(self._after_sync(), "key maintenance")
            since = response.next_batch
            if catching_up:
                self._spawn(self._settle(set(self._tasks)))
            first_start = catching_up = False
            self.caught_up = True
            self._caught_up_event.set()
            await self._meta.set_meta(SYNC_TOKEN_KEY, since)
            await self._guarded(self._retry_pending(sink), "retrying undecrypted events")

    async def _settle(self, first_answers: set[asyncio.Task[Any]]) -> None:
        """After the first sync: once the commands it brought are answered (or after a while), the
        start's deferred work — the cross-signing identity."""
        try:
            if first_answers:
                await asyncio.wait(first_answers, timeout=SETTLE_WAIT_S)
            if self.encryption and self.cross_signing is None:
                await self._guarded(self._setup_cross_signing(), "cross-signing set-up")
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

    def _queue_invites(self, response: SyncResponse) -> None:
        for room_id, info in response.rooms.invite.items():
            if room_id in self._open_invites:
                continue
            if len(self._open_invites) >= MAX_OPEN_INVITES:
                self.invites_dropped += 1
                if self.invites_dropped == 1 or self.invites_dropped % 1000 == 0:
                    log.warning("too many invites at once (%d dropped so far); the rest wait for the next start",
                                self.invites_dropped)
                continue
            # The inviter as the invite's own member event says it: for the log only.
            inviter = next((str(e.sender)[:100] for e in getattr(info, "invite_state", [])
                            if getattr(e, "membership", None) == "invite"), "?")
            self._open_invites.add(room_id)
            self._spawn(self._handle_invite(room_id, inviter))

    async def _handle_invite(self, room_id: str, inviter: str) -> None:
        try:
            async with self._invite_slots:
                if room_id in self.policy_rooms:
                    await self._join_policy_list(room_id, f"invited by {inviter}")
                elif room_id in self.admin_rooms:
                    await self._join_admin_room(room_id, inviter)
                else:
                    await self._decline(room_id, inviter)
        except Exception:
            log.exception("handling the invite to %s failed", room_id)
        finally:
            self._open_invites.discard(room_id)

    async def _join_admin_room(self, room_id: str, inviter: str) -> None:
        log.info("joining admin room %s (invited by %s)", room_id, inviter)
        self._joining.add(room_id)
        try:
            result = await asyncio.wait_for(self.client.join(room_id), timeout=self._invite_timeout_s)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._joining.discard(room_id)
            log.warning("could not join admin room %s: %s; trying again at the next invite or start", room_id,
                        type(exc).__name__)
            return
        if isinstance(result, JoinError):
            self._joining.discard(room_id)
            log.warning("could not join admin room %s: %s", room_id, result.message)

    async def _decline(self, room_id: str, inviter: str) -> None:
        key = INVITE_KEY.format(room_id=room_id)
        memory = _load_json(await self._meta.get_meta(key))
        attempts = int(memory.get("attempts", 0) or 0)
        since_last = time.time() - float(memory.get("last", 0) or 0)
        if attempts >= INVITE_ATTEMPTS or (attempts and since_last < INVITE_RETRY_S):
            return  # declined (or tried) already: not again at every sync or start
        log.info("declining invite to %s from %s: not an admin room", room_id, inviter)
        problem = None
        try:
            response = await asyncio.wait_for(self.client.room_leave(room_id), timeout=self._invite_timeout_s)
            if not isinstance(response, RoomLeaveResponse):
                problem = str(getattr(response, "message", response))[:200]
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a stall, a dropped connection, anything: this invite's problem only
            problem = type(exc).__name__
        done = problem is None
        await self._meta.set_meta(key, json.dumps({
            "attempts": INVITE_ATTEMPTS if done else attempts + 1, "last": time.time(),
            "state": "declined" if done else "failed", "inviter": inviter}))
        if not done:
            log.warning("could not decline the invite to %s (%s); %s", room_id, problem,
                        "giving up" if attempts + 1 >= INVITE_ATTEMPTS else f"trying again in {INVITE_RETRY_S:.0f}s")
        await self._prune_invite_records()

    async def _prune_invite_records(self) -> None:
        """The memory of declined invites stays bounded: by age, and by count (a flood of invites)."""
        now = time.monotonic()
        if now < getattr(self, "_invites_pruned_at", -INVITE_PRUNE_EVERY_S) + INVITE_PRUNE_EVERY_S:
            return
        self._invites_pruned_at = now
        gone = await self._meta.prune_meta_records(
            INVITE_KEY.format(room_id=""), older_than=time.time() - INVITE_RECORD_DAYS * 86400, keep=MAX_INVITE_RECORDS)
        if gone:
            log.info("forgot %d declined invite(s): older than %d days, or beyond the newest %d",
                     gone, INVITE_RECORD_DAYS, MAX_INVITE_RECORDS)

    # -- policy lists: joined, read, never written to

    async def follow_policy_lists(self) -> list[str]:
        """Resolve the configured list aliases and join the lists the bot is not in yet (a public
        one lets it in; a private one waits for an invite). Returns those not joined."""
        waiting = []
        for entry in self.policy_lists:
            room_id: str | None = entry
            if entry.startswith("#"):
                response = await self.client.room_resolve_alias(entry)
                found = getattr(response, "room_id", None) if isinstance(response, RoomResolveAliasResponse) else None
                room_id = str(found) if valid_room_id(found) else None
                if room_id is None:
                    log.warning("policy list %s: the alias does not resolve; not followed for now", entry)
                    waiting.append(entry)
                    continue
                if room_id in self.admin_rooms:
                    log.warning("policy list %s is %s, an admin room: not followed as a list", entry, room_id)
                    continue
                self.policy_rooms.add(room_id)
            assert room_id is not None
            if room_id not in self.client.rooms and not await self._join_policy_list(room_id, "configured"):
                waiting.append(entry)
        return waiting

    async def _join_policy_list(self, room_id: str, why: str) -> bool:
        log.info("joining policy list %s (%s)", room_id, why)
        try:
            result = await asyncio.wait_for(self.client.join(room_id), timeout=self._invite_timeout_s)
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("could not join policy list %s: %s; trying again at the next invite or start", room_id,
                        type(exc).__name__)
            return False
        if isinstance(result, JoinError):
            log.warning("could not join policy list %s (%s); it is followed once the bot is invited", room_id,
                        str(result.message)[:200])
            return False
        return True

    def _feed_policy_lists(self, response: SyncResponse) -> None:
        """The state a sync brings of the list rooms (the full state at the first sync of a run,
        the changes after), in order, to `on_policy_state`. A failure there is logged, never the sync's."""
        if self._on_policy_state is None:
            return
        for room_id, info in response.rooms.join.items():
            if room_id not in self.policy_rooms:
                continue
            events = [e.source for e in getattr(info, "state", []) if isinstance(getattr(e, "source", None), dict)]
            events += [e.source for e in info.timeline.events
                       if isinstance(getattr(e, "source", None), dict) and "state_key" in e.source]
            try:
                self._on_policy_state(room_id, events)
            except Exception:
                log.exception("reading the state of policy list %s failed", room_id)

    async def _handle_timeline(self, response: SyncResponse, sink: EventSink, since: str | None = None) -> None:
        for room_id, info in response.rooms.join.items():
            if room_id not in self.admin_rooms or room_id in self.policy_rooms:
                continue
            events = list(info.timeline.events)
            if info.timeline.limited and since is not None:
                # More happened since the last sync than one sync shows (a flood, or the bot was
                # down): a command in the gap would be lost without a word, so read the gap.
                events = await self._gap(room_id, info.timeline.prev_batch, since) + events
            for event in self._after_own_join(events):
                try:
                    await self._dispatch(room_id, event, sink)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("handling event %s in %s failed; going on", getattr(event, "event_id", "?"), room_id)

    async def _gap(self, room_id: str, prev_batch: str | None, since: str) -> list[Any]:
        """The events a limited timeline left out, oldest first, read back to the last sync.

        Bounded: a flood of more than GAP_PAGES × GAP_PAGE_SIZE events costs that many events, and
        what lies beyond is said in the log and the room, never silently dropped."""
        if not prev_batch:
            return []
        found: list[Any] = []
        start: str | None = prev_batch
        for _ in range(GAP_PAGES):
            response = await self.client.room_messages(
                room_id, start=start, end=since, direction=MessageDirection.back, limit=GAP_PAGE_SIZE,
                message_filter=GAP_FILTER,
            )
            if not isinstance(response, RoomMessagesResponse):
                log.warning("could not read the gap in %s: %s", room_id, getattr(response, "message", response))
                break
            found.extend(response.chunk)
            if not response.chunk or not response.end or response.end == start:
                return list(reversed(found))
            start = response.end
        else:
            log.warning("more than %d events arrived in %s between two syncs; older ones were not read",
                        GAP_PAGES * GAP_PAGE_SIZE, room_id)
            self._spawn(self._say_gap_not_read(room_id))
        return list(reversed(found))

    async def _say_gap_not_read(self, room_id: str) -> None:
        view = Text(f"More than {GAP_PAGES * GAP_PAGE_SIZE} messages arrived here at once; I did not read the older "
                    "ones. If you sent a command just before them, send it again.", tone="warning")
        await self.send(room_id, notice_content(render(view)), background=True)

    def _after_own_join(self, events: list[Any]) -> list[Any]:
        """A room the bot has just joined comes with its recent history: that is not for us."""
        start = 0
        for index, event in enumerate(events):
            if (
                isinstance(event, RoomMemberEvent)
                and event.state_key == self.user_id
                and event.membership == "join"
                and event.prev_membership != "join"
            ):
                start = index + 1
        return events[start:]

    async def _dispatch(self, room_id: str, event: Any, sink: EventSink) -> None:
        event_id = getattr(event, "event_id", None)
        if not event_id or getattr(event, "sender", None) == self.user_id:
            return
        if isinstance(event, MegolmEvent):
            if event_id not in self._pending:
                self._pending[event_id] = _Pending(event, room_id, time.monotonic())
                await self._request_key(event)
            return
        if not isinstance(event, (ReactionEvent, RoomMessage)):
            return  # a state change (a topic, a display name): nothing to answer, nothing to journal
        if not await self._claim(sink, event_id, room_id, event.sender, _body(event) if isinstance(event, RoomMessage) else None):
            return
        if isinstance(event, ReactionEvent):
            self._spawn(self._deliver_reaction(room_id, event, sink))
        elif isinstance(event, RoomMessage):
            self._spawn(self._deliver_message(room_id, event, sink))

    async def _claim(self, sink: EventSink, event_id: str, room_id: str, sender: str, body: str | None) -> bool:
        """Take an event in once. Only what the sink says is a command goes into the command journal
        (answered after a restart); anything else is only remembered as seen."""
        journals = getattr(sink, "journals", None)
        if journals is None or journals(room_id, sender, body):
            return await self._journal.claim_event(event_id, room_id)
        return await self._journal.note_event(event_id, room_id)

    # Off the sync loop: finding out whether the sender's device is cross-signed may need a request.

    async def _deliver_message(self, room_id: str, event: Any, sink: EventSink) -> None:
        await sink.on_message(await self._message(room_id, event))

    async def _deliver_reaction(self, room_id: str, event: ReactionEvent, sink: EventSink) -> None:
        device, trusted = await self._sender_device(event)
        await sink.on_reaction(IncomingReaction(
            room_id, event.event_id, event.sender, event.reacts_to, event.key,
            encrypted=bool(getattr(event, "decrypted", False)), sender_device=device, sender_device_trusted=trusted,
            sender_identity=self._identity_of(event.sender) if trusted else None,
        ))

    async def _message(self, room_id: str, event: Any) -> IncomingMessage:
        content = event.source.get("content", {}) or {}
        relates = content.get("m.relates_to") or {}
        body = _body(event)
        thread_root = relates.get("event_id") if relates.get("rel_type") == "m.thread" else None
        device, trusted = await self._sender_device(event)
        return IncomingMessage(
            room_id=room_id,
            event_id=event.event_id,
            sender=event.sender,
            body=body,
            msgtype=str(content.get("msgtype", "")),
            origin_ts=int(getattr(event, "server_timestamp", 0) or 0),
            thread_root=thread_root,
            is_edit=relates.get("rel_type") == "m.replace" or "m.new_content" in content,
            encrypted=bool(getattr(event, "decrypted", False)),
            sender_device=device,
            sender_device_trusted=trusted,
            sender_identity=self._identity_of(event.sender) if trusted else None,
        )

    def _identity_of(self, user_id: str) -> str | None:
        """The master key of the published keys that the last trust answer was about."""
        cached = self._sender_keys.get(user_id)
        return cached[1].master_public if cached is not None and cached[1] is not None else None

    async def _sender_device(self, event: Any) -> tuple[str | None, bool | None]:
        """The device that sent a decrypted event (found by the Megolm sender key) and whether it is cross-signed."""
        sender_key = getattr(event, "sender_key", None)
        if not getattr(event, "decrypted", False) or not sender_key or not self.encryption:
            return None, None
        device_id = next((d.id for d in self.client.device_store.active_user_devices(event.sender)
                          if d.curve25519 == sender_key), None)
        if device_id is None:
            keys = await self._published_keys(event.sender, fresh=True)
            device_id = keys.device_with_curve25519(sender_key) if keys is not None else None
        if device_id is None:
            return None, False
        return device_id, await self.device_trust(event.sender, device_id, curve25519=sender_key)

    async def device_trust(self, user_id: str, device_id: str, *, curve25519: str | None = None) -> bool | None:
        """Whether the owner cross-signed this device: their self-signing key, itself signed by their
        master key, signed the device's published keys (and, when given, `curve25519` is its key).
        None when it cannot be known (no encryption, or the homeserver did not answer)."""
        keys = await self._published_keys(user_id)
        if keys is None:
            return None
        if keys.device_cross_signed(device_id, curve25519=curve25519):
            return True
        # A cached answer may predate the signature (people often verify a new login just before using it).
        fetched_at = self._sender_keys.get(user_id, (0.0, None))[0]
        if keys.device(device_id) is None or time.monotonic() - fetched_at > SENDER_KEYS_RECHECK_S:
            keys = await self._published_keys(user_id, fresh=True)
            if keys is None:
                return None
        return keys.device_cross_signed(device_id, curve25519=curve25519)

    async def _published_keys(self, user_id: str, *, fresh: bool = False) -> UserKeys | None:
        if self._keys_api is None:
            return None
        cached = self._sender_keys.get(user_id)
        if cached is not None and not fresh and time.monotonic() - cached[0] < SENDER_KEYS_CACHE_S:
            return cached[1]
        try:
            keys = (await self._keys_api.query([user_id]))[user_id]
        except KeysAPIError as exc:
            log.warning("cannot look up the devices of %s: %s", user_id, exc)
            return None
        self._sender_keys[user_id] = (time.monotonic(), keys)
        return keys

    async def _request_key(self, event: MegolmEvent) -> None:
        try:
            await self.client.request_room_key(event)
        except (LocalProtocolError, aiohttp.ClientError, asyncio.TimeoutError):
            pass

    async def _retry_pending(self, sink: EventSink) -> None:
        """Events whose keys arrived since are decrypted now; those still locked after a grace period are reported."""
        now = time.monotonic()
        for event_id, pending in list(self._pending.items()):
            try:
                decrypted = self.client.decrypt_event(pending.event)
            except (EncryptionError, LocalProtocolError, ValueError):
                decrypted = None
            if decrypted is not None and not isinstance(decrypted, MegolmEvent):
                del self._pending[event_id]
                if hasattr(decrypted, "room_id"):
                    decrypted.room_id = pending.room_id
                await self._dispatch(pending.room_id, decrypted, sink)
            elif now - pending.first_seen > self._undecryptable_grace_s:
                del self._pending[event_id]
                if await self._claim(sink, event_id, pending.room_id, pending.event.sender, None):
                    self._spawn(sink.on_undecryptable(UndecryptableMessage(
                        pending.room_id, event_id, pending.event.sender, "no room key reached the bot's device")))

    async def tick_pending(self, sink: EventSink) -> None:
        """Called periodically so that an undecryptable event is reported even when the room is quiet."""
        if self._pending:
            await self._retry_pending(sink)

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
                await self._choose_key_holders(room_id)
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

    async def _choose_key_holders(self, room_id: str) -> None:
        """Before a send in an encrypted room: which devices get its room key. With
        `require_cross_signed_senders` (the default), and always in the direct rooms that carry
        secrets, only devices their owners cross-signed, with the identity the bot pinned for them
        when it pinned one (for secrets: always). nio shares keys with every device it has not
        blacklisted, so the others are blacklisted, and taken off the list again when they qualify.
        nio drops the outbound sessions of the owner's rooms on either change: the next message starts
        a new one, which a device left out never had, and a device let back in gets."""
        room = self.client.rooms.get(room_id)
        if room is None:
            return
        secret = room_id in self._secret_rooms
        trusted: list[str] = []
        # The bot's own account too: another login of it (not cross-signed by the bot) gets no keys.
        for user_id in list(room.users):
            ok_devices: set[str] | None = None  # None: every device
            if secret or self.trusted_devices_only:
                keys = await self._published_keys(user_id)
                pin = await self._identities.get(user_id) if (secret or self.pin_identities) else None
                ok_devices = set() if keys is None or (pin is not None and keys.master_public != pin.master_key) else {
                    d.id for d in self.client.device_store.active_user_devices(user_id)
                    if keys.device_cross_signed(d.id, curve25519=d.curve25519, ed25519=d.ed25519)}
            for device in list(self.client.device_store.active_user_devices(user_id)):
                if user_id == self.user_id and device.id == self.client.device_id:
                    continue  # its own device: nio never shares keys with it
                if ok_devices is None or device.id in ok_devices:
                    if user_id != self.user_id:
                        trusted.append(device.id)
                    if self.client.olm.is_device_blacklisted(device):
                        self.client.unblacklist_device(device)
                elif not self.client.olm.is_device_blacklisted(device):
                    self.client.blacklist_device(device)
        if secret and not trusted:
            others = ", ".join(sorted(u for u in room.users if u != self.user_id)) or "the other member"
            raise MatrixError(f"no device of {others} is cross-signed by them (with the identity the bot pinned, if "
                              "it pinned one), so nothing was sent: verify a device, then ask again",
                              errcode=NO_TRUSTED_DEVICE)

    # -- a message to one person alone

    async def send_direct(self, user_id: str, content: dict[str, Any], *,
                          timeout: float = DIRECT_READY_TIMEOUT_S) -> tuple[str, str]:
        """Send `content` to `user_id` alone, encrypted, in a direct room the bot opens for the purpose
        (or the one it opened before, if only the two of them are in it). Waits, within `timeout`,
        until the person has joined, or at least until the room is encrypted and their devices are
        known, so that the room key reaches them. Returns (room ID, event ID)."""
        if not self.encryption:
            raise MatrixError("direct messages are sent encrypted, and encryption is off (encryption.enabled)")
        keys = await self._published_keys(user_id, fresh=True)
        if keys is not None and not any(keys.device_key(device, "curve25519") for device in keys.devices):
            # Encrypted for nobody, it would be lost: say so at once instead of after the timeout.
            raise MatrixError(f"{user_id} has no device that can receive encrypted messages")
        room_id = await self._direct_room(user_id, timeout)
        # Whatever the config says for admin rooms: a secret goes only to the person's devices that
        # they cross-signed, with the identity the bot pinned for them when it pinned one.
        self._secret_rooms.add(room_id)
        self._sender_keys.pop(user_id, None)  # the newest keys: a device signed a moment ago counts
        return room_id, await self.send(room_id, content)

    async def direct_problem(self, user_id: str) -> str | None:
        """Why `send_direct` to this person could not be read by them (None: it could): asked before
        making a secret that only a direct message may carry."""
        if not self.encryption:
            return "direct messages are sent encrypted, and encryption is off (encryption.enabled)"
        keys = await self._published_keys(user_id, fresh=True)
        if keys is None:
            return f"the devices of {user_id} could not be looked up"
        if not any(keys.device_key(device, "curve25519") for device in keys.devices):
            return f"{user_id} has no device that can receive encrypted messages"
        return None

    async def _direct_room(self, user_id: str, timeout: float) -> str:
        key = DIRECT_ROOM_KEY.format(user_id=user_id)
        stored = await self._meta.get_meta(key)
        if stored and self._private_with(stored, user_id):
            await self._wait_direct_ready(stored, user_id, timeout)
            return stored
        response = await self.client.room_create(
            visibility=RoomVisibility.private, is_direct=True, preset=RoomPreset.trusted_private_chat,
            invite=[user_id], initial_state=[{"type": "m.room.encryption", "state_key": "", "content": MEGOLM}],
            name="Admin bot (private)",
        )
        if not isinstance(response, RoomCreateResponse):
            raise _error_of(response, f"cannot open a direct room with {user_id}")
        await self._meta.set_meta(key, response.room_id)
        await self._wait_direct_ready(response.room_id, user_id, timeout)
        return str(response.room_id)

    def _private_with(self, room_id: str, user_id: str) -> bool:
        """The bot and this person, and nobody else, are in (or invited to) this encrypted room."""
        room = self.client.rooms.get(room_id)
        return bool(room is not None and room.encrypted and set(room.users) == {self.user_id, user_id})

    async def _wait_direct_ready(self, room_id: str, user_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            room = self.client.rooms.get(room_id)
            if room is not None and room.encrypted and user_id in room.users:
                joined = user_id not in room.invited_users
                devices_known = any(True for _ in self.client.device_store.active_user_devices(user_id))
                if joined and devices_known:
                    return
                if devices_known and time.monotonic() > deadline - timeout / 2:
                    return  # invited, keys known: the room key reaches their devices; they read it on joining
            await asyncio.sleep(0.2)
        room = self.client.rooms.get(room_id)
        if room is None or not room.encrypted:
            raise MatrixError(f"the direct room with {user_id} was not ready in time; nothing was sent")
        if not any(True for _ in self.client.device_store.active_user_devices(user_id)):
            raise MatrixError(f"no device of {user_id} became known to the bot in time; nothing was sent")

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
        """An event of an admin room read again from the homeserver (decrypted when it is encrypted
        and its key is here), as the sink would have got it; None when it cannot be read (redacted,
        gone, no key) or is neither a message nor a reaction."""
        response = await self.client.room_get_event(room_id, event_id)
        event = getattr(response, "event", None)
        if event is None:
            return None
        if isinstance(event, MegolmEvent):
            try:
                event = self.client.decrypt_event(event)
            except (EncryptionError, LocalProtocolError, ValueError):
                return None
            if hasattr(event, "room_id"):
                event.room_id = room_id
        if isinstance(event, ReactionEvent):
            device, trusted = await self._sender_device(event)
            return IncomingReaction(room_id, event.event_id, event.sender, event.reacts_to, event.key,
                                    encrypted=bool(getattr(event, "decrypted", False)), sender_device=device,
                                    sender_device_trusted=trusted)
        if isinstance(event, RoomMessage):
            return await self._message(room_id, event)
        return None

    async def joined_rooms(self) -> list[str]:
        response = await self.client.joined_rooms()
        return list(getattr(response, "rooms", []))

    async def close(self) -> None:
        await self.drain()
        if self._keys_api is not None:
            await self._keys_api.aclose()
        await self.client.close()


def _load_json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def strip_reply_fallback(body: str) -> str:
    """Remove the quoted original that older clients put before a reply's own text."""
    lines = body.split("\n")
    if not lines or not lines[0].startswith("> "):
        return body
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    if index < len(lines) and lines[index] == "":
        index += 1
    return "\n".join(lines[index:])


__all__ = ["MatrixClient", "EventSink", "MatrixError", "strip_reply_fallback", "EncryptionError"]


def _body(event: Any) -> str:
    """A message's own text: of an edit, what it says now (the dispatcher never runs it, but reads
    it); of a reply, without the quoted fallback."""
    content = event.source.get("content", {}) or {}
    relates = content.get("m.relates_to") or {}
    body = content.get("body") if isinstance(content.get("body"), str) else ""
    new_content = content.get("m.new_content")
    if isinstance(new_content, dict) and isinstance(new_content.get("body"), str):
        return str(new_content["body"])
    if isinstance(relates, dict) and relates.get("m.in_reply_to"):
        return strip_reply_fallback(body)
    return body
