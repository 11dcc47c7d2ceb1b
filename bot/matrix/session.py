"""The bot's login: a token, a stored password session or a password login; its cross-signing identity.

Part of the Matrix client (bot/matrix/client.py), which constructs it and whose state it shares."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from nio import LoginResponse, WhoamiResponse

from bot.matrix.crypto.identity import CrossSigning
from bot.matrix.crypto.keyfile import KEYS_FILE_NAME
from bot.matrix.crypto.keys_api import KeysAPI
from bot.matrix.common import MatrixError, SESSION_KEY

if TYPE_CHECKING:
    from bot.matrix.client import MatrixClient

log = logging.getLogger(__name__)


class Session:
    def __init__(self, client: MatrixClient) -> None:
        self._c = client  # the client that constructed it: its nio client, stores and shared state

    async def login(self) -> None:
        """Restore a session from a token (or a stored password session), or log in with the password."""
        if self._c._token is not None and self._c._token.current() is not None:
            await self._restore(self._c._token.current().reveal(), self._c._configured_device)  # type: ignore[union-attr]
        else:
            stored = await self._c._meta.get_meta(SESSION_KEY)
            if stored and await self._try_stored_session(stored):
                pass
            else:
                await self._password_login()
        self._save_new_encrypted_rooms_only()
        if self._c.encryption and self._c.client.should_upload_keys:
            await self._c.client.keys_upload()
        if self._c.encryption:
            # Who cross-signed a sender's device is asked from the first command on; the bot's own
            # cross-signing identity (a key query, signatures) is set up after the first sync and the
            # commands it brought: nothing before the first answer needs it (see `settled`).
            self._c._keys_api = KeysAPI(self._c.client.homeserver, lambda: str(self._c.client.access_token))

    def _save_new_encrypted_rooms_only(self) -> None:
        """nio writes the encrypted rooms it saw in a sync to its crypto store after every sync (a
        transaction on the event loop, under every command's round trip), although they are already
        there; only rooms not yet saved by this process are written (the table ignores duplicates)."""
        store = self._c.client.store
        if store is None:
            return
        save = store.save_encrypted_rooms
        saved: set[str] = set(self._c.client.encrypted_rooms)  # loaded from the store at login

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
        assert self._c._crypto_dir is not None and self._c._keys_api is not None
        olm = self._c.client.olm
        self._c.cross_signing = CrossSigning(
            self._c._keys_api,
            user_id=self._c.user_id,
            device_id=self._c.device_id,
            device_ed25519=olm.account.identity_keys["ed25519"] if olm is not None else None,
            path=self._c._crypto_dir / KEYS_FILE_NAME,
            password=lambda: self._c._password.reveal() if self._c._password is not None else None,
        )
        await self._c.cross_signing.ensure()

    async def _restore(self, token: str, device_id: str | None) -> None:
        self._c.client.access_token = token
        who = await self._c.client.whoami()
        if not isinstance(who, WhoamiResponse):
            raise MatrixError(f"the bot's access token was refused: {getattr(who, 'message', who)}")
        if who.user_id != self._c.user_id:
            raise MatrixError(f"the access token belongs to {who.user_id}, not to bot.user_id {self._c.user_id}")
        device = who.device_id or device_id
        if not device:
            raise MatrixError("the homeserver did not say which device this token belongs to; set bot.device_id")
        if device_id and who.device_id and device_id != who.device_id:
            log.warning("bot.device_id %s differs from the token's device %s; using the token's", device_id, who.device_id)
        self._c.client.restore_login(self._c.user_id, device, token)

    async def _try_stored_session(self, stored: str) -> bool:
        user_id, device_id, token = (stored.split(" ", 2) + ["", "", ""])[:3]
        if user_id != self._c.user_id or not token:
            return False
        try:
            await self._restore(token, device_id)
        except MatrixError:
            return False
        return True

    async def _password_login(self) -> None:
        if self._c._password is None:
            raise MatrixError("no usable access token and no password to log in with")
        response = await self._c.client.login(password=self._c._password.reveal(), device_name=self._c._device_name)
        if not isinstance(response, LoginResponse):
            raise MatrixError(f"password login failed: {getattr(response, 'message', response)}")
        self._c._on_secret(response.access_token)
        await self._c._meta.set_meta(SESSION_KEY, f"{response.user_id} {response.device_id} {response.access_token}")
