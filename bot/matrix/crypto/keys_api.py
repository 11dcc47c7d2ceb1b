"""The client-server key endpoints, with the bot's own access token, and what they publish.

- POST /keys/query: devices and cross-signing keys of users, parsed into `UserKeys`, whose
  answers (is this device cross-signed by its owner?) verify every signature in the chain;
- POST /keys/device_signing/upload: the bot's public cross-signing keys, answering user-interactive
  auth (`AuthRequired`) with what the caller gives;
- POST /keys/signatures/upload: the signature of the bot's device.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field
from typing import Any

import httpx

from bot.homeserver.http import tls_context
from bot.matrix.crypto.signing import verify_signed_json
from bot.records import record


# -- what the homeserver publishes


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


def _has_usage(key_object: Mapping[str, Any], usage: str) -> bool:
    usages = key_object.get("usage")
    return isinstance(usages, list) and usage in usages


@record
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
        if not _has_usage(self.master, "master"):
            return None
        return single_ed25519_key(self.master)

    @property
    def self_signing_public(self) -> str | None:
        """The self-signing key, only if the master key signed it."""
        master = self.master_public
        ssk = self.self_signing
        if master is None or not isinstance(ssk, Mapping) or ssk.get("user_id") != self.user_id:
            return None
        if not _has_usage(ssk, "self_signing"):
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


# -- the endpoints


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
            verify=tls_context(homeserver_url), headers={"User-Agent": "synapse-admin-bot"},
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
        except (ValueError, RecursionError):
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
