"""How the bot's parts are built from its Config, in one place: the app (bot/app.py, which adds
the command runtime on top) and the CLI (`check`, `reset-cross-signing`) both build them here,
so that they reach the homeserver at the same URLs, with the same tokens and the same refresh.

Which token goes where:
- the client-server API (sync, whoami, keys) is called as the bot, at `homeserver.url`;
- the Admin API at `homeserver.admin_api_url`, with `admin_api.access_token(_file)` when it is
  configured, else with the bot's own session token;
- after a 401 a token is refreshed: by its OAuth refresher (MAS) when it has one, else by
  re-reading its token file (rotated from outside);
- the Admin API and the client-server API pass one homeserver gate (bot/homeserver/gate.py) when they are
  the same server: a 429 or an outage holds back every part of the bot together;
- matrix-authentication-service's admin API (the `mas:` section) at `mas.url`, with its own
  credential: a token (re-read after a 401) or the client-credentials grant.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from bot.homeserver.admin_api import AdminAPI, AdminHTTP
from bot.homeserver.admin_api.http import ResponseObserver
from bot.matrix.rooms import AdminRooms
from bot.config import Config, MASConfig, TokenSource, check_command_names
from bot.matrix.crypto.identity import CrossSigning
from bot.matrix.crypto.keyfile import keys_path
from bot.matrix.crypto.keys_api import KeysAPI
from bot.homeserver.gate import HomeserverGate
from bot.homeserver.login import TokenRefresher
from bot.homeserver.mas_api import MASAPI, MASHTTP, ClientCredentials, StaticToken, TokenProvider
from bot.state.db import Database
from bot.state.identities import IdentityPins
from bot.state.journal import Journal
from bot.state.meta import MetaStore
from bot.state.stores import Stores

if TYPE_CHECKING:
    from bot.handler_api.spec import CommandTable
    from bot.matrix.client import MatrixClient

CHECK_TIMEOUT_S = 15.0


def current_token(source: TokenSource | None) -> str | None:
    """The token a source holds right now, if any."""
    current = source.current() if source is not None else None
    return current.reveal() if current is not None else None


def check_commands(config: Config, table: CommandTable) -> None:
    """What the config says about commands by name (`approval.two_person`) matches the table; raises ConfigError."""
    commands = list(table.commands())
    prompting = {c.name for c in commands if not c.runtime and c.confirm_label != "no"}
    check_command_names(config, prompting, {c.name for c in commands} - prompting)


# -- state on disk


async def open_store(config: Config) -> tuple[Database, Stores]:
    """The bot's database, opened (and migrated), and its stores; the caller closes the Database."""
    db = Database(config.storage.path)
    await db.open()
    return db, Stores.over(db)


def crypto_dir(config: Config) -> Path | None:
    """Where the E2EE keys live; None when encryption is off."""
    return config.storage.directory / "crypto" if config.encryption.enabled else None


def cross_signing_keys_path(config: Config) -> Path:
    return keys_path(config.storage.directory)


# -- the Matrix side


def matrix_client(config: Config, *, meta: MetaStore, journal: Journal, admin_rooms: AdminRooms,
                  identities: IdentityPins | None = None, **options: Any) -> MatrixClient:
    # Imported here: matrix-nio takes seconds to load, and the CLI's `check` and `login` never need it.
    from bot.matrix.client import MatrixClient

    return MatrixClient(
        homeserver_url=config.homeserver.url,
        user_id=config.bot.user_id,
        token=config.bot.token,
        password=config.bot.password,
        device_id=config.bot.device_id,
        device_name=config.bot.device_name,
        meta=meta,
        journal=journal,
        identities=identities,
        crypto_dir=crypto_dir(config),
        admin_rooms=admin_rooms,
        trusted_devices_only=config.encryption.require_cross_signed_senders,
        pin_identities=config.encryption.pin_identities,
        **options,
    )


def keys_api(config: Config, token: Callable[[], str], *, timeout: float = 30.0) -> KeysAPI:
    """The key endpoints of the client-server API, as the bot."""
    return KeysAPI(config.homeserver.url, token, timeout=timeout)


def cross_signing(config: Config, api: KeysAPI, *, device_id: str, device_ed25519: str | None = None) -> CrossSigning:
    """The bot's cross-signing identity for this device (the bot's password answers interactive auth)."""
    password = config.bot.password
    return CrossSigning(
        api, user_id=config.bot.user_id, device_id=device_id, device_ed25519=device_ed25519,
        path=cross_signing_keys_path(config), password=lambda: password.reveal() if password is not None else None,
    )


# -- the Admin API


class Refreshers:
    """One OAuth refresher per token source (the bot's token and the admin token may be one source)."""

    def __init__(self, *, on_lost: Callable[[str], Awaitable[None]] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._on_lost = on_lost
        self._transport = transport
        self.all: list[TokenRefresher] = []

    def for_source(self, source: TokenSource | None) -> TokenRefresher | None:
        if source is None or source.oauth is None:
            return None
        for existing in self.all:
            if existing.source is source:
                return existing
        refresher = TokenRefresher(source, on_lost=self._on_lost, transport=self._transport)
        self.all.append(refresher)
        return refresher


def admin_token_source(config: Config) -> TokenSource | None:
    """Where the Admin API token comes from: its own setting, else the bot's token (None: the
    bot's password session, known only once it has logged in)."""
    return config.admin_token if config.admin_token is not None else config.bot.token


def admin_api(
    config: Config,
    *,
    session_token: Callable[[], str],
    refreshers: Refreshers | None = None,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    observer: ResponseObserver | None = None,
    gate: HomeserverGate | None = None,
) -> AdminAPI:
    """The Admin API client. `session_token` is the bot's current session token, used when no
    admin token is configured (or its file is empty). `gate` is the Matrix side's: it is shared
    when the Admin API is on the same server (an Admin API elsewhere is down or busy on its own)."""
    admin_token = config.admin_token

    def token() -> str:
        configured = current_token(admin_token)
        return configured if configured is not None else session_token()

    source = admin_token_source(config)
    refresher = refreshers.for_source(source) if refreshers is not None else None
    refresh: Callable[[], Any] | None = source.reload if source is not None else None
    if refresher is not None:
        refresh = refresher.on_unauthorized
    if gate is not None and _origin(config.homeserver.admin_api_url) != _origin(config.homeserver.url):
        gate = None
    return AdminAPI(AdminHTTP(config.homeserver.admin_api_url, token, refresh_token=refresh, timeout=timeout,
                              transport=transport, observer=observer, gate=gate))


def _origin(url: str) -> str:
    parts = httpx.URL(url)
    return f"{parts.scheme}://{parts.host}:{parts.port or ''}"


def client_api(config: Config, token: Callable[[], str], *, timeout: float = CHECK_TIMEOUT_S) -> AdminAPI:
    """The same client pointed at the client-server API (whoami, versions, joined rooms, aliases), as the bot."""
    return AdminAPI(AdminHTTP(config.homeserver.url, token, timeout=timeout))


# -- matrix-authentication-service (MAS)


def _fresh(source: TokenSource) -> str:
    """A secret from a file is read again each time it is needed (an outside rotation takes effect)."""
    source.reload()
    current = source.current()
    assert current is not None
    return current.reveal()


def token_provider(
    config: MASConfig, *, on_secret: Callable[[str], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None, clock: Callable[[], float] = time.time,
) -> TokenProvider:
    if config.client_id is not None:
        assert config.client_secret is not None
        secret_source = config.client_secret
        return ClientCredentials(config.url, config.client_id, lambda: _fresh(secret_source),
                                 auth_method=config.client_auth_method, transport=transport, clock=clock,
                                 on_token=on_secret)
    assert config.token is not None
    token = config.token

    def current() -> str:
        value = token.current()
        assert value is not None
        return value.reveal()

    return StaticToken(current, reload=token.reload)


def mas_client(
    config: MASConfig, *, on_secret: Callable[[str], None] | None = None,
    transport: httpx.AsyncBaseTransport | None = None, timeout: float = 30.0, clock: Callable[[], float] = time.time,
    max_retries: int = 3,
) -> MASAPI:
    """The MAS admin API client for the `mas:` section. `on_secret` hears every secret it comes to
    hold (tokens it is issued, a rotated secret file) before it is used: give it the log scrubber."""
    if on_secret is not None:
        for secret in config.secrets():
            on_secret(secret)
        for source in (config.token, config.client_secret):
            if source is not None:
                source.on_change(lambda secret: on_secret(secret.reveal()))
    provider = token_provider(config, on_secret=on_secret, transport=transport, clock=clock)
    return MASAPI(MASHTTP(config.url, provider, transport=transport, timeout=timeout, max_retries=max_retries))
