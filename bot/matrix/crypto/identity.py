"""The bot's cross-signing identity, kept on the homeserver: created once (its keys file saved
before the upload), reused on every start, the bot's device signed with it; inspected read-only
for `check`; replaced only on the operator's explicit request (`reset-cross-signing`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from bot.matrix.crypto.keyfile import CrossSigningKeys, KeysFileError, load_keys, save_keys
from bot.matrix.crypto.keys_api import AuthRequired, KeysAPI, KeysAPIError, UserKeys
from bot.records import record

log = logging.getLogger(__name__)

README_RECOVERY = "README, section 'Encrypted admin rooms'"
RESET_COMMAND = "synapse-admin-bot reset-cross-signing --config PATH"


class State:
    READY = "ready"  # the bot's keys are on the homeserver and its device is cross-signed
    FOREIGN = "foreign"  # the account has cross-signing keys the bot does not hold
    NEEDS_AUTH = "needs-auth"  # the homeserver wants interactive auth the bot cannot give
    ERROR = "error"  # a transient failure; retried later
    BAD_FILE = "bad-keys-file"  # the keys file exists but cannot be used; left as it is
    ABSENT = "absent"  # (check only) no keys yet: the bot creates them at its next start


@record
class Status:
    """Where the bot's cross-signing identity stands (a `State`), why, and whether its device is signed."""

    state: str
    detail: str
    device_signed: bool = False

    @property
    def ready(self) -> bool:
        return self.state == State.READY


def foreign_keys_detail(user_id: str) -> str:
    return (f"the account {user_id} already has cross-signing keys that the bot does not hold (set up by "
            "another login, or the bot's keys file was lost); clients in 'exclude insecure devices' mode will "
            f"not trust the bot's device. To give the bot its own identity: `{RESET_COMMAND}` "
            f"(see {README_RECOVERY})")


MAS_STAGES = ("m.oauth", "org.matrix.cross_signing_reset")


def _auth_detail(exc: AuthRequired, has_password: bool, action: str, then: str) -> str:
    """What to do when the homeserver wants interactive auth (UIA) for an upload of the bot's keys."""
    stages = ", ".join("+".join(flow) for flow in exc.flows) or "none offered"
    if any(exc.offers(stage) for stage in MAS_STAGES):
        url = next((p.get("url") for p in exc.params.values() if isinstance(p, Mapping) and p.get("url")), None)
        return (f"the homeserver delegates authentication to MAS, which must approve before the bot can {action}: "
                f"approve the cross-signing reset on the bot account's page{f' ({url})' if url else ''}, or let "
                f"`{RESET_COMMAND}` open a 10-minute window through the Admin API; then {then}")
    if exc.offers("m.login.password"):
        if has_password:
            return f"the homeserver refused the bot's password when asked to {action} ({exc.errcode}: {exc.error})"
        return (f"the homeserver wants the bot account's password to {action} (Synapse asks for it whenever a "
                "master key is replaced, and older versions for the first upload too): set bot.password or "
                f"bot.password_file, then {then}. If nobody knows the password, a server admin sets a new one with "
                "PUT /_synapse/admin/v2/users/<user_id> {\"password\": \"…\", \"logout_devices\": false}")
    return f"the homeserver wants interactive authentication the bot cannot give to {action} (flows: {stages})"


class CrossSigning:
    """Keeps the bot's cross-signing identity on the homeserver and its device signed."""

    def __init__(
        self,
        api: KeysAPI,
        *,
        user_id: str,
        device_id: str,
        device_ed25519: str | None,
        path: Path,
        password: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.api = api
        self.user_id = user_id
        self.device_id = device_id
        self.device_ed25519 = device_ed25519
        self.path = path
        self._password = password
        self.status: Status | None = None
        self.last_attempt = 0.0

    async def ensure(self) -> Status:
        """At every start: create the identity once, reuse it after, sign this device. Never replaces keys."""
        self.last_attempt = time.monotonic()
        try:
            status = await self._ensure()
        except KeysFileError as exc:
            status = Status(State.BAD_FILE, str(exc))
        except AuthRequired as exc:
            status = Status(State.NEEDS_AUTH, _auth_detail(
                exc, self._password() is not None, "upload its cross-signing keys", "restart the bot"))
        except KeysAPIError as exc:
            status = Status(State.ERROR, f"cross-signing set-up failed: {exc}")
        self.status = status
        self._log(status)
        return status

    async def _ensure(self) -> Status:
        server = (await self.api.query([self.user_id]))[self.user_id]
        local = load_keys(self.path, self.user_id)
        on_server = server.master_public
        if local is None:
            if on_server is not None:
                return Status(State.FOREIGN, foreign_keys_detail(self.user_id))
            local = CrossSigningKeys.generate(self.user_id)
            # Saved before the upload: a crash in between must not leave keys on the server that nobody holds.
            save_keys(self.path, local)
            log.info("created cross-signing keys for %s (master key %s) in %s", self.user_id, local.master.public, self.path)
            await self._upload(local)
        elif on_server is None:
            log.info("the homeserver has no cross-signing keys for %s; uploading the bot's", self.user_id)
            await self._upload(local)
        elif on_server != local.master.public:
            return Status(State.FOREIGN, foreign_keys_detail(self.user_id))
        elif server.self_signing_public != local.self_signing.public:
            await self._upload(local)  # same master key: re-publishing our own sub-keys
        return await self._sign_device(local, server if on_server == local.master.public else None)

    async def replace(self, allow_without_uia: Callable[[], Awaitable[None]] | None) -> Status:
        """The operator's explicit action: give the account a new identity held by the bot."""
        self.last_attempt = time.monotonic()
        try:
            server = (await self.api.query([self.user_id]))[self.user_id]
            try:
                local = load_keys(self.path, self.user_id)
            except KeysFileError:
                local = None
            if local is not None and server.master_public == local.master.public:
                status = await self._sign_device(local, server)
                return Status(status.state, "the account's cross-signing identity is already the bot's; nothing replaced. "
                              + status.detail, status.device_signed)
            if server.master_public is not None and allow_without_uia is not None:
                await allow_without_uia()
            # Keys the bot already holds are put back rather than a third identity made up.
            keys = local or CrossSigningKeys.generate(self.user_id)
            if local is None:
                save_keys(self.path, keys)
            await self._upload(keys)
            log.warning("uploaded the cross-signing identity of %s held by the bot (master key %s)",
                        self.user_id, keys.master.public)
            status = await self._sign_device(keys, None)
            if status.ready:
                status = Status(status.state, f"the bot now holds the account's cross-signing identity; {status.detail}",
                                status.device_signed)
        except AuthRequired as exc:
            status = Status(State.NEEDS_AUTH, _auth_detail(
                exc, self._password() is not None, "replace the account's cross-signing keys",
                f"run `{RESET_COMMAND}` again"))
        except KeysAPIError as exc:
            status = Status(State.ERROR, f"replacing the cross-signing identity failed: {exc}")
        self.status = status
        return status

    async def _upload(self, keys: CrossSigningKeys) -> None:
        body = keys.upload_body()
        try:
            await self.api.upload_signing_keys(body)
        except AuthRequired as exc:
            password = self._password()
            if password is None or not exc.offers("m.login.password"):
                raise
            await self.api.upload_signing_keys(body, {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": self.user_id},
                "password": password,
                **({"session": exc.session} if exc.session else {}),
            })
        log.info("uploaded the cross-signing keys of %s", self.user_id)

    async def _sign_device(self, keys: CrossSigningKeys, server: UserKeys | None) -> Status:
        if server is None or server.self_signing_public != keys.self_signing.public:
            server = (await self.api.query([self.user_id]))[self.user_id]
        if server.device_cross_signed(self.device_id, ed25519=self.device_ed25519):
            return Status(State.READY, f"device {self.device_id} is cross-signed", device_signed=True)
        device = server.device(self.device_id)
        if device is None:
            return Status(State.ERROR, f"the keys of device {self.device_id} are not on the homeserver yet")
        published = server.device_key(self.device_id, "ed25519")
        if self.device_ed25519 is not None and published != self.device_ed25519:
            # Only sign what is provably this device: its key must be the one in the bot's own crypto store.
            return Status(State.ERROR, f"the homeserver publishes other keys for device {self.device_id} "
                                       "than the bot's crypto store holds; not signing them")
        failures = await self.api.upload_signatures({self.user_id: {self.device_id: keys.sign_device(device)}})
        if failures:
            return Status(State.ERROR, f"the homeserver refused the signature of device {self.device_id}: "
                                       f"{json.dumps(failures)[:300]}")
        log.info("cross-signed the bot's device %s", self.device_id)
        return Status(State.READY, f"device {self.device_id} is cross-signed", device_signed=True)

    def _log(self, status: Status) -> None:
        if status.state == State.READY:
            log.info("cross-signing ready: %s", status.detail)
        elif status.state == State.ERROR:
            log.warning("%s; retried later", status.detail)
        else:
            log.error("cross-signing not set up: %s", status.detail)


async def inspect(api: KeysAPI, *, user_id: str, device_id: str | None, path: Path) -> Status:
    """Read-only: what `check` reports. Creates and uploads nothing."""
    try:
        local = load_keys(path, user_id)
    except KeysFileError as exc:
        return Status(State.BAD_FILE, str(exc))
    server = (await api.query([user_id]))[user_id]
    on_server = server.master_public
    if on_server is None:
        if local is None:
            return Status(State.ABSENT, "no cross-signing keys yet; the bot creates them at its next start")
        return Status(State.ABSENT, "the homeserver has none of the bot's cross-signing keys; the bot uploads them at its next start")
    if local is None or local.master.public != on_server:
        return Status(State.FOREIGN, foreign_keys_detail(user_id))
    if device_id is None:
        return Status(State.READY, "the account's cross-signing identity is the bot's (device not known: no token)")
    if server.device(device_id) is None:
        return Status(State.ABSENT, f"the bot's identity is on the homeserver; device {device_id} has no keys there yet "
                                    "(uploaded at the bot's next start)")
    if server.device_cross_signed(device_id):
        return Status(State.READY, f"the bot's identity is on the homeserver and device {device_id} is cross-signed",
                      device_signed=True)
    return Status(State.ABSENT, f"the bot's identity is on the homeserver; device {device_id} is not cross-signed yet "
                                "(signed at the bot's next start)")
