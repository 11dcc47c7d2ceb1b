"""Cross-signing for the bot's own account, and checking other people's devices. matrix-nio has none.

Clients in "exclude insecure devices" mode (MSC4153; Element's default direction) share room keys
only with devices that their owner has cross-signed, and do not decrypt messages from other
devices. So the bot owns a cross-signing identity: a master key, which signs a self-signing key
(which signs the bot's device) and a user-signing key. The three private keys are Ed25519 seeds
kept in one file under the storage directory (mode 0600), created once and reused on every start:
a new master key would show up in every client as an identity reset.

Built on:
- Ed25519 from pycryptodome (already installed as a matrix-nio dependency; RFC 8032 signatures),
- canonical JSON as the Matrix spec defines it, with the stdlib encoder configured exactly as the
  `canonicaljson` package does (sorted keys, no whitespace, UTF-8, no floats needed here); the
  unit tests check our output and signatures against `canonicaljson` and `signedjson`.

The homeserver is trusted to relay keys, not to forge them: every signature read back from
/keys/query is verified here. Private keys never appear in a log line, a repr or an exception.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from Crypto.Signature import eddsa

log = logging.getLogger(__name__)

KEYS_FILE_NAME = "cross_signing_keys.json"
KEYS_FILE_VERSION = 1
FILE_MODE = 0o600

README_RECOVERY = "README, section 'Encrypted admin rooms'"
RESET_COMMAND = "synapse-admin-bot reset-cross-signing --config PATH"


# -- encoding


def canonical_json(value: Any) -> bytes:
    """Matrix canonical JSON: sorted keys, no insignificant whitespace, UTF-8, no floats."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True).encode("utf-8")


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, as Matrix writes keys and signatures."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


# -- keys and signatures


class SigningKey:
    """An Ed25519 private key (its 32-byte seed). Its repr never shows the seed."""

    __slots__ = ("_seed", "_key", "public")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed has 32 bytes")
        self._seed = seed
        self._key = eddsa.import_private_key(seed)
        self.public = b64encode(self._key.public_key().export_key(format="raw"))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(secrets.token_bytes(32))

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public}"

    def sign(self, message: bytes) -> str:
        return b64encode(eddsa.new(self._key, "rfc8032").sign(message))

    def seed_b64(self) -> str:
        return b64encode(self._seed)

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public!r})"


def verify_signature(public_key: str, message: bytes, signature: str) -> bool:
    try:
        key = eddsa.import_public_key(b64decode(public_key))
        eddsa.new(key, "rfc8032").verify(message, b64decode(signature))
    except (ValueError, TypeError):
        return False
    return True


def _signable(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def sign_json(obj: Mapping[str, Any], signer_user_id: str, key: SigningKey) -> dict[str, Any]:
    """A copy of `obj` with `key`'s signature added (the Matrix "Signing JSON" algorithm)."""
    signed = copy.deepcopy(dict(obj))
    signed.pop("unsigned", None)
    signature = key.sign(canonical_json(_signable(signed)))
    signed.setdefault("signatures", {}).setdefault(signer_user_id, {})[key.key_id] = signature
    return signed


def verify_signed_json(obj: Mapping[str, Any], signer_user_id: str, public_key: str, key_name: str | None = None) -> bool:
    """Whether `obj` carries a valid signature of `signer_user_id`'s Ed25519 key `public_key`.

    Cross-signing keys sign as `ed25519:<public key>`; a device signs as `ed25519:<device ID>` (`key_name`)."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, Mapping):
        return False
    by_user = signatures.get(signer_user_id)
    if not isinstance(by_user, Mapping):
        return False
    signature = by_user.get(f"ed25519:{key_name or public_key}")
    if not isinstance(signature, str):
        return False
    try:
        message = canonical_json(_signable(obj))
    except (TypeError, ValueError):
        return False
    return verify_signature(public_key, message, signature)


def single_ed25519_key(key_object: Mapping[str, Any] | None) -> str | None:
    """The public key of a cross-signing key object (`{"keys": {"ed25519:<pub>": "<pub>"}}`)."""
    if not isinstance(key_object, Mapping):
        return None
    keys = key_object.get("keys")
    if not isinstance(keys, Mapping) or len(keys) != 1:
        return None
    (key_id, public), = keys.items()
    if not isinstance(public, str) or key_id != f"ed25519:{public}":
        return None
    return public


@dataclass(frozen=True)
class CrossSigningKeys:
    """The bot's three private cross-signing keys."""

    user_id: str
    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, SigningKey.generate(), SigningKey.generate(), SigningKey.generate())

    def _key_object(self, usage: str, key: SigningKey) -> dict[str, Any]:
        return {"user_id": self.user_id, "usage": [usage], "keys": {key.key_id: key.public}}

    def upload_body(self) -> dict[str, Any]:
        """The body of POST /keys/device_signing/upload: the public keys, the sub-keys signed by the master key."""
        return {
            "master_key": self._key_object("master", self.master),
            "self_signing_key": sign_json(self._key_object("self_signing", self.self_signing), self.user_id, self.master),
            "user_signing_key": sign_json(self._key_object("user_signing", self.user_signing), self.user_id, self.master),
        }

    def sign_device(self, device_keys: Mapping[str, Any]) -> dict[str, Any]:
        """The device's keys, as published, with the self-signing key's signature (for /keys/signatures/upload)."""
        return sign_json(device_keys, self.user_id, self.self_signing)

    # -- the keys file

    def to_json(self) -> dict[str, Any]:
        return {
            "version": KEYS_FILE_VERSION,
            "user_id": self.user_id,
            "master": self.master.seed_b64(),
            "self_signing": self.self_signing.seed_b64(),
            "user_signing": self.user_signing.seed_b64(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrossSigningKeys:
        if data.get("version") != KEYS_FILE_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        return cls(
            str(data["user_id"]),
            SigningKey(b64decode(data["master"])),
            SigningKey(b64decode(data["self_signing"])),
            SigningKey(b64decode(data["user_signing"])),
        )


class KeysFileError(RuntimeError):
    """The keys file exists but cannot be used; never overwritten silently."""


def keys_path(storage_directory: Path) -> Path:
    return storage_directory / "crypto" / KEYS_FILE_NAME


def load_keys(path: Path, user_id: str) -> CrossSigningKeys | None:
    """The bot's keys, or None when there is no file yet. A file readable by others is tightened to 0600."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); made it owner-only", path, mode)
        path.chmod(FILE_MODE)
    try:
        keys = CrossSigningKeys.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # The message names the problem, never the content.
        raise KeysFileError(f"{path} cannot be read as the bot's cross-signing keys ({type(exc).__name__}); "
                            "move it away only if you mean to give the bot a new identity") from None
    if keys.user_id != user_id:
        raise KeysFileError(f"{path} holds the cross-signing keys of {keys.user_id}, not of {user_id}")
    return keys


def save_keys(path: Path, keys: CrossSigningKeys) -> None:
    """Write atomically; the file is created 0600 (never world-readable, not even for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".cross_signing.", dir=path.parent)  # mkstemp creates 0600
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(keys.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- what the homeserver publishes


@dataclass(frozen=True)
class UserKeys:
    """One user's entry in a /keys/query answer."""

    user_id: str
    master: Mapping[str, Any] | None = None
    self_signing: Mapping[str, Any] | None = None
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def master_public(self) -> str | None:
        if not isinstance(self.master, Mapping) or self.master.get("user_id") != self.user_id:
            return None
        if "master" not in (self.master.get("usage") or []):
            return None
        return single_ed25519_key(self.master)

    @property
    def self_signing_public(self) -> str | None:
        """The self-signing key, only if the master key signed it."""
        master = self.master_public
        ssk = self.self_signing
        if master is None or not isinstance(ssk, Mapping) or ssk.get("user_id") != self.user_id:
            return None
        if "self_signing" not in (ssk.get("usage") or []):
            return None
        public = single_ed25519_key(ssk)
        if public is None or not verify_signed_json(ssk, self.user_id, master):
            return None
        return public

    def device(self, device_id: str) -> Mapping[str, Any] | None:
        device = self.devices.get(device_id)
        if not isinstance(device, Mapping) or device.get("user_id") != self.user_id or device.get("device_id") != device_id:
            return None
        return device

    def device_key(self, device_id: str, algorithm: str) -> str | None:
        device = self.device(device_id)
        keys = device.get("keys") if device else None
        value = keys.get(f"{algorithm}:{device_id}") if isinstance(keys, Mapping) else None
        return value if isinstance(value, str) else None

    def device_with_curve25519(self, curve25519: str) -> str | None:
        """The ID of the published device whose identity key is `curve25519` (a Megolm event's sender key)."""
        for device_id in self.devices:
            if self.device_key(device_id, "curve25519") == curve25519:
                return device_id
        return None

    def device_cross_signed(self, device_id: str, *, curve25519: str | None = None, ed25519: str | None = None) -> bool:
        """Whether the owner's self-signing key (signed by their master key) signed this device's keys.

        `curve25519`/`ed25519`, when given, must match the published keys, so that the answer is about
        the device that really sent the message (the homeserver could publish other keys under its ID).
        """
        ssk = self.self_signing_public
        device = self.device(device_id)
        if ssk is None or device is None:
            return False
        if curve25519 is not None and self.device_key(device_id, "curve25519") != curve25519:
            return False
        own_key = self.device_key(device_id, "ed25519")
        if own_key is None or (ed25519 is not None and own_key != ed25519):
            return False
        # The device signs its own keys; a self-signing signature over someone else's keys proves nothing.
        if not verify_signed_json(device, self.user_id, own_key, device_id):
            return False
        return verify_signed_json(device, self.user_id, ssk)


def parse_keys_query(body: Mapping[str, Any], user_ids: list[str]) -> dict[str, UserKeys]:
    def section(name: str) -> Mapping[str, Any]:
        value = body.get(name)
        return value if isinstance(value, Mapping) else {}

    devices, masters, ssks = section("device_keys"), section("master_keys"), section("self_signing_keys")
    result = {}
    for user_id in user_ids:
        user_devices = devices.get(user_id)
        result[user_id] = UserKeys(
            user_id=user_id,
            master=masters.get(user_id),
            self_signing=ssks.get(user_id),
            devices=user_devices if isinstance(user_devices, Mapping) else {},
        )
    return result


# -- the client-server endpoints


class KeysAPIError(RuntimeError):
    def __init__(self, status: int, errcode: str, error: str) -> None:
        super().__init__(f"{errcode}: {error} (HTTP {status})")
        self.status = status
        self.errcode = errcode
        self.error = error


class AuthRequired(KeysAPIError):
    """The homeserver wants user-interactive auth (UIA) for this upload."""

    def __init__(self, flows: list[list[str]], session: str | None, errcode: str = "", error: str = "",
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(401, errcode or "M_FORBIDDEN", error or "interactive authentication required")
        self.flows = flows
        self.session = session
        self.params = params or {}

    def offers(self, stage: str) -> bool:
        return any(flow == [stage] for flow in self.flows)


class KeysAPI:
    """The key endpoints of the client-server API, with the bot's own access token."""

    def __init__(self, homeserver_url: str, token: Callable[[], str], *, timeout: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._token = token
        self._client = httpx.AsyncClient(
            base_url=homeserver_url.rstrip("/"), timeout=timeout, follow_redirects=False, transport=transport,
            headers={"User-Agent": "synapse-admin-bot"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _post(self, path: str, body: Any) -> dict[str, Any]:
        try:
            response = await self._client.post(path, json=body, headers={"Authorization": f"Bearer {self._token()}"})
        except httpx.HTTPError as exc:
            raise KeysAPIError(0, "M_CONNECTION_FAILED", f"cannot reach the homeserver ({type(exc).__name__})") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise KeysAPIError(response.status_code, "M_BAD_RESPONSE", "the homeserver answered with something other than JSON")
        if response.status_code == 401 and "flows" in data:
            flows = [list(flow.get("stages") or []) for flow in data.get("flows") or [] if isinstance(flow, dict)]
            params = data.get("params") if isinstance(data.get("params"), dict) else {}
            raise AuthRequired(flows, data.get("session"), str(data.get("errcode") or ""), str(data.get("error") or ""), params)
        if not response.is_success:
            raise KeysAPIError(response.status_code, str(data.get("errcode") or "M_UNKNOWN"), str(data.get("error") or ""))
        return data

    async def query(self, user_ids: list[str]) -> dict[str, UserKeys]:
        """POST /_matrix/client/v3/keys/query — devices and cross-signing keys of these users."""
        body = await self._post("/_matrix/client/v3/keys/query", {"device_keys": {u: [] for u in user_ids}})
        return parse_keys_query(body, user_ids)

    async def upload_signing_keys(self, body: Mapping[str, Any], auth: Mapping[str, Any] | None = None) -> None:
        """POST /_matrix/client/v3/keys/device_signing/upload"""
        await self._post("/_matrix/client/v3/keys/device_signing/upload", {**body, **({"auth": dict(auth)} if auth else {})})

    async def upload_signatures(self, signatures: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """POST /_matrix/client/v3/keys/signatures/upload → the `failures` map (empty when all were accepted)."""
        data = await self._post("/_matrix/client/v3/keys/signatures/upload", signatures)
        failures = data.get("failures")
        return failures if isinstance(failures, dict) else {}


# -- the bot's identity


class State:
    READY = "ready"  # the bot's keys are on the homeserver and its device is cross-signed
    FOREIGN = "foreign"  # the account has cross-signing keys the bot does not hold
    NEEDS_AUTH = "needs-auth"  # the homeserver wants interactive auth the bot cannot give
    ERROR = "error"  # a transient failure; retried later
    BAD_FILE = "bad-keys-file"  # the keys file exists but cannot be used; left as it is
    ABSENT = "absent"  # (check only) no keys yet: the bot creates them at its next start


@dataclass(frozen=True)
class Status:
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


def file_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None
