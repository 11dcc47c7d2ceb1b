"""Configuration: frozen records (bot/records.py) built by `load(path, environ)`.

Every problem is a `ConfigError` that names the key and what is wrong with it, so that the
CLI can print one line and exit 2. Loading has no side effect beyond reading files.
Relative paths are taken relative to the directory of the config file.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from bot.text.schedule import Recurrence
from bot.text.units import parse_duration_ms
from bot.records import record

ENV_ACCESS_TOKEN = "SYNAPSE_ADMIN_BOT_ACCESS_TOKEN"
ENV_ADMIN_TOKEN = "SYNAPSE_ADMIN_BOT_ADMIN_TOKEN"
ENV_PASSWORD = "SYNAPSE_ADMIN_BOT_PASSWORD"
ENV_MAS_TOKEN = "SYNAPSE_ADMIN_BOT_MAS_TOKEN"
ENV_MAS_CLIENT_SECRET = "SYNAPSE_ADMIN_BOT_MAS_CLIENT_SECRET"
MAS_CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

USER_ID_RE = re.compile(r"^@[^:\s]+:[A-Za-z0-9.\-\[\]:]+$")
ROLES = ("admins", "moderators", "viewers")


class ConfigError(Exception):
    """A problem with one key of the configuration."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class Secret:
    """A secret string that never shows itself in repr, str or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@record
class OAuthSession:
    """What an OAuth token file (written by `synapse-admin-bot login` on MAS) adds to the token."""

    refresh_token: Secret
    expires_at: int | None  # ms
    client_id: str
    token_endpoint: str
    device_id: str | None
    user_id: str | None


class TokenSource:
    """Where an access token comes from: a literal (config or environment) or a file.

    A file is read again on `reload()`, which the clients call when the homeserver answers
    401, so that a token rotated outside the bot takes effect without a restart. A JSON token
    file also holds an OAuth refresh token (see bot/homeserver/login.py), kept in `oauth`.
    Listeners registered with `on_change` hear about every new token.
    """

    def __init__(self, *, value: Secret | None = None, file: Path | None = None, key: str = "") -> None:
        self._value = value
        self.file = file
        self.key = key
        self.oauth: OAuthSession | None = None
        self._listeners: list[Callable[[Secret], None]] = []
        if file is not None:
            self._value, self.oauth = self._read_file()

    def _read_file(self) -> tuple[Secret, OAuthSession | None]:
        assert self.file is not None
        try:
            text = self.file.read_text().strip()
        except OSError as exc:
            raise ConfigError(self.key, f"cannot read token file {self.file}: {exc.strerror}") from None
        if not text:
            raise ConfigError(self.key, f"token file {self.file} is empty")
        if not text.startswith("{"):
            return Secret(text.splitlines()[0].strip()), None
        try:
            data = json.loads(text)
            session = None
            if data.get("refresh_token"):
                session = OAuthSession(
                    refresh_token=Secret(str(data["refresh_token"])), expires_at=data.get("expires_at"),
                    client_id=str(data["client_id"]), token_endpoint=str(data["token_endpoint"]),
                    device_id=data.get("device_id"), user_id=data.get("user_id"),
                )
            return Secret(str(data["access_token"])), session
        except (ValueError, KeyError, TypeError):
            raise ConfigError(self.key, f"token file {self.file} is not a token nor a token file written by login") from None

    def current(self) -> Secret | None:
        return self._value

    def on_change(self, listener: Callable[[Secret], None]) -> None:
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Re-read the token file; True when it now holds a different token."""
        if self.file is None:
            return False
        try:
            fresh, session = self._read_file()
        except ConfigError:
            return False
        changed = fresh != self._value
        self._value, self.oauth = fresh, session
        if changed:
            for listener in self._listeners:
                listener(fresh)
        return changed

    def __repr__(self) -> str:
        return f"TokenSource(file={self.file!s})" if self.file else "TokenSource(value='***')"


@record
class HomeserverConfig:
    """The `homeserver:` section: the client-server API's URL and the Admin API's (the same by default)."""

    url: str
    admin_api_url: str


@record
class BotConfig:
    """The `bot:` section: the bot's account and how it signs in (a token or a password)."""

    user_id: str
    token: TokenSource | None
    password: Secret | None
    device_id: str | None
    device_name: str = "synapse-admin-bot"

    @property
    def server_name(self) -> str:
        return self.user_id.split(":", 1)[1]


@record
class AccessConfig:
    """The `access:` section: who holds each role, by full Matrix user ID."""

    admins: tuple[str, ...] = ()
    moderators: tuple[str, ...] = ()
    viewers: tuple[str, ...] = ()

    @property
    def everyone(self) -> frozenset[str]:
        return frozenset(self.admins + self.moderators + self.viewers)


@record
class StorageConfig:
    """The `storage:` section: the bot's state database; its directory holds the rest of the bot's state."""

    path: Path

    @property
    def directory(self) -> Path:
        return self.path.parent


@record
class EncryptionConfig:
    """The `encryption:` section: whether the bot speaks in encrypted rooms, and whom it trusts there."""

    enabled: bool = True
    # In encrypted admin rooms, obey only devices their owner cross-signed (and send keys only to those).
    require_cross_signed_senders: bool = True
    # Pin each role holder's cross-signing identity at first sight; a changed one waits for `identity approve`.
    pin_identities: bool = True


@record
class ReportsConfig:
    """The `reports:` section: polling the homeserver's reports, reminders of waiting ones, the stats digest."""

    enabled: bool = True
    poll_interval: float = 2.0
    # One digest of the reports that wait longer than `reminder_after` seconds (open, or claimed and
    # not closed), at most every `reminder_every` seconds; 0 turns it off.
    reminder_after: float = 4 * 3600.0
    reminder_every: float = 4 * 3600.0
    # `reports stats` posted to every admin room on this schedule ("weekly mon 09:00", "daily 18:00"; UTC)
    digest: Recurrence | None = None


@record
class JobsConfig:
    """The `jobs:` section: how much bulk work the bot keeps in flight."""

    # The most items of bulk jobs (all jobs together) in flight at once; below it, the bot finds
    # how many the homeserver takes (bot/homeserver/concurrency.py).
    max_concurrency: int = 16


@record
class ConfirmationsConfig:
    """The `confirmations:` section: how many seconds a prompt waits for its confirmation."""

    timeout: float = 600.0


@record
class ApprovalConfig:
    """The `approval:` section: the commands that need a second person."""

    # Commands (by name, `user deactivate`) whose prompt a second person must confirm. The names are
    # checked against the command table at start (`check_command_names`: the table is not known here).
    two_person: tuple[str, ...] = ()


@record
class MetricsConfig:
    """The `metrics:` section: where the bot serves Prometheus metrics, if anywhere."""

    bind: tuple[str, int] | None = None  # off unless set


@record
class RateLimitsConfig:
    """The `rate_limits:` section: whether the bot lifts the homeserver's message rate limit on itself."""

    # At start the bot lifts its own message rate limit (the Admin API's override_ratelimit, 0/0):
    # Synapse applies its default limit to server admins too, and a flood of reports must not
    # silence the bot's replies. false keeps the homeserver's limit (and any override set by hand).
    exempt_bot: bool = True


@record
class MASConfig:
    """The `mas:` section: matrix-authentication-service, where accounts live on ESS.

    The credential needs the `urn:mas:admin` scope: either a token (`token`: from the config, a
    file re-read after a 401, or the environment) or an OAuth 2.0 client for the client-credentials
    grant (`client_id` + `client_secret`, the secret from the config, a file re-read at each
    grant, or the environment). Exactly one of `token` and `client_id` is set.
    """

    url: str
    token: TokenSource | None = None
    client_id: str | None = None
    client_secret: TokenSource | None = None
    client_auth_method: str = "client_secret_basic"

    @property
    def uses_client_credentials(self) -> bool:
        return self.client_id is not None

    def secrets(self) -> list[str]:
        """The secrets known now, for the log scrubber."""
        found = []
        for source in (self.token, self.client_secret):
            current = source.current() if source is not None else None
            if current is not None:
                found.append(current.reveal())
        return found


@record
class Config:
    """The whole configuration, read and checked (`parse`); each section is its own class."""

    homeserver: HomeserverConfig
    bot: BotConfig
    admin_token: TokenSource | None  # None: use the bot's own token
    admin_rooms: tuple[str, ...]
    command_prefix: str
    access: AccessConfig
    storage: StorageConfig
    encryption: EncryptionConfig = field(default_factory=EncryptionConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    confirmations: ConfirmationsConfig = field(default_factory=ConfirmationsConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    rate_limits: RateLimitsConfig = field(default_factory=RateLimitsConfig)
    approval: ApprovalConfig = field(default_factory=ApprovalConfig)
    mas: MASConfig | None = None  # None: no `mas:` section (the homeserver may still delegate to MAS)
    policy_lists: tuple[str, ...] = ()  # policy rooms (m.policy.rule.*) the team follows: read only

    @property
    def server_name(self) -> str:
        return self.bot.server_name


_TOP_LEVEL_KEYS = (
    "homeserver",
    "bot",
    "admin_api",
    "admin_rooms",
    "command_prefix",
    "access",
    "storage",
    "encryption",
    "reports",
    "confirmations",
    "jobs",
    "metrics",
    "rate_limits",
    "approval",
    "mas",
    "policy_lists",
)


class _Reader:
    """Typed access to one mapping of the YAML document, naming keys by their full path."""

    def __init__(self, data: Any, prefix: str, allowed: tuple[str, ...]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(prefix or "(top level)", f"must be a mapping, not {_kind(data)}")
        self.data = data
        self.prefix = prefix
        for key in data:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f" (did you mean {hint[0]}?)" if hint else ""
                raise ConfigError(self.key(str(key)), f"unknown key{suggestion}")

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def section(self, name: str, allowed: tuple[str, ...]) -> _Reader:
        return _Reader(self.data.get(name), self.key(name), allowed)

    def string(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise ConfigError(self.key(name), "missing")
            return default
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(self.key(name), f"must be a non-empty string, not {_kind(value)}")
        return value.strip()

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ConfigError(self.key(name), f"must be true or false, not {_kind(value)}")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(self.key(name), f"must be a number, not {_kind(value)}")
        if value < minimum:
            raise ConfigError(self.key(name), f"must be at least {minimum:g}, not {value:g}")
        return float(value)

    def duration(self, name: str, default: float, *, minimum: float) -> float:
        """Seconds, written as a number of seconds or a duration like `90s`, `30m`, `4h`, `1d`; 0 or
        `off` is 0 (off)."""
        value = self.data.get(name)
        if value is None:
            return default
        if value is False or value == 0 or (isinstance(value, str) and value.strip().lower() == "off"):
            return 0.0
        if isinstance(value, str):
            ms = parse_duration_ms(value)
            if ms is None:
                raise ConfigError(self.key(name), f"must be a duration like 30m, 4h or 1d (or seconds), not {value.strip()[:40]!r}")
            seconds = ms / 1000
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(self.key(name), f"must be a duration like 4h, or a number of seconds, not {_kind(value)}")
        else:
            seconds = float(value)
        if seconds < minimum:
            raise ConfigError(self.key(name), f"must be at least {minimum:g} s (or 0 for off), not {seconds:g}")
        return seconds

    def string_list(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        if isinstance(value, str) or not isinstance(value, list):
            raise ConfigError(self.key(name), f"must be a list of strings, not {_kind(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ConfigError(f"{self.key(name)}[{index}]", f"must be a non-empty string, not {_kind(item)}")
        return tuple(item.strip() for item in value)


def _kind(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _url(reader: _Reader, name: str, *, required: bool) -> str | None:
    value = reader.string(name, required=required)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(reader.key(name), f"must be an http(s) URL, not {value!r}")
    return value.rstrip("/")


def _path(base: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _token_source(
    reader: _Reader, *, base: Path, env_value: str | None, env_name: str,
    names: tuple[str, str] = ("access_token", "access_token_file"),
) -> TokenSource | None:
    literal, file = names
    if env_value:
        return TokenSource(value=Secret(env_value.strip()), key=env_name)
    token = reader.string(literal)
    token_file = reader.string(file)
    if token and token_file:
        raise ConfigError(reader.key(literal), f"set either {literal} or {file}, not both")
    if token:
        return TokenSource(value=Secret(token), key=reader.key(literal))
    if token_file:
        return TokenSource(file=_path(base, token_file), key=reader.key(file))
    return None


def _mas(root: _Reader, base_dir: Path, environ: Mapping[str, str]) -> MASConfig | None:
    if not root.has("mas"):
        return None
    reader = root.section("mas", ("url", "access_token", "access_token_file", "client_id", "client_secret",
                                  "client_secret_file", "client_auth_method"))
    url = _url(reader, "url", required=True)
    assert url is not None
    method = reader.string("client_auth_method", "client_secret_basic") or "client_secret_basic"
    if method not in MAS_CLIENT_AUTH_METHODS:
        raise ConfigError(reader.key("client_auth_method"), f"must be one of {', '.join(MAS_CLIENT_AUTH_METHODS)}, not {method!r}")
    token = _token_source(reader, base=base_dir, env_value=environ.get(ENV_MAS_TOKEN), env_name=ENV_MAS_TOKEN)
    if token is not None:
        # A token in the environment wins over the file, as for the bot's other tokens.
        if token.key != ENV_MAS_TOKEN and reader.has("client_id"):
            raise ConfigError(reader.key("client_id"), "set either a token (access_token, access_token_file) "
                                                       "or client_id + client_secret, not both")
        return MASConfig(url=url, token=token)
    client_id = reader.string("client_id")
    secret = _token_source(reader, base=base_dir, env_value=environ.get(ENV_MAS_CLIENT_SECRET),
                           env_name=ENV_MAS_CLIENT_SECRET, names=("client_secret", "client_secret_file"))
    if client_id is None and secret is None:
        raise ConfigError(reader.key("access_token"), "missing: set mas.access_token, mas.access_token_file or "
                                                      f"${ENV_MAS_TOKEN} (a token with the urn:mas:admin scope), "
                                                      "or mas.client_id and mas.client_secret")
    if client_id is None:
        raise ConfigError(reader.key("client_id"), "missing: a client secret needs the client it belongs to")
    if secret is None:
        raise ConfigError(reader.key("client_secret"), f"missing: set mas.client_secret, mas.client_secret_file "
                                                       f"or ${ENV_MAS_CLIENT_SECRET} for client {client_id}")
    return MASConfig(url=url, client_id=client_id, client_secret=secret, client_auth_method=method)


def parse(data: Any, *, base_dir: Path, environ: Mapping[str, str]) -> Config:
    root = _Reader(data, "", _TOP_LEVEL_KEYS)

    hs = root.section("homeserver", ("url", "admin_api_url"))
    url = _url(hs, "url", required=True)
    assert url is not None
    homeserver = HomeserverConfig(url=url, admin_api_url=_url(hs, "admin_api_url", required=False) or url)

    bot_reader = root.section(
        "bot", ("user_id", "access_token", "access_token_file", "password", "password_file", "device_id", "device_name")
    )
    user_id = bot_reader.string("user_id", required=True)
    assert user_id is not None
    if not USER_ID_RE.match(user_id):
        raise ConfigError("bot.user_id", f"must be a Matrix user ID like @adminbot:example.com, not {user_id!r}")
    token = _token_source(
        bot_reader, base=base_dir, env_value=environ.get(ENV_ACCESS_TOKEN), env_name=ENV_ACCESS_TOKEN
    )
    password = _password(bot_reader, base_dir, environ)
    if token is None and password is None:
        raise ConfigError(
            "bot.access_token",
            f"missing: set bot.access_token, bot.access_token_file, bot.password or ${ENV_ACCESS_TOKEN}",
        )
    bot = BotConfig(
        user_id=user_id,
        token=token,
        password=password,
        device_id=bot_reader.string("device_id"),
        device_name=bot_reader.string("device_name", "synapse-admin-bot") or "synapse-admin-bot",
    )

    admin_reader = root.section("admin_api", ("access_token", "access_token_file"))
    admin_token = _token_source(
        admin_reader, base=base_dir, env_value=environ.get(ENV_ADMIN_TOKEN), env_name=ENV_ADMIN_TOKEN
    )

    admin_rooms = root.string_list("admin_rooms")
    if not admin_rooms:
        raise ConfigError("admin_rooms", "missing: list at least one room ID (!…) or alias (#…)")
    for index, room in enumerate(admin_rooms):
        if not re.match(r"^[!#][^\s]+$", room) or (room.startswith("#") and ":" not in room):
            raise ConfigError(f"admin_rooms[{index}]", f"must be a room ID (!…) or an alias (#…:server), not {room!r}")

    prefix = root.string("command_prefix", "!admin") or "!admin"
    if any(ch.isspace() for ch in prefix):
        raise ConfigError("command_prefix", "must not contain spaces")

    access_reader = root.section("access", ROLES)
    lists: dict[str, tuple[str, ...]] = {}
    for role in ROLES:
        people = access_reader.string_list(role)
        for index, person in enumerate(people):
            if not USER_ID_RE.match(person):
                raise ConfigError(f"access.{role}[{index}]", f"must be a full Matrix user ID like @alice:example.com, not {person!r}")
        lists[role] = people
    access = AccessConfig(**lists)
    if not access.everyone:
        raise ConfigError("access", "nobody is listed: add someone under access.admins")
    if user_id in access.everyone:
        raise ConfigError("access", f"{user_id} is the bot itself and cannot hold a role")

    storage_reader = root.section("storage", ("path",))
    storage = StorageConfig(path=_path(base_dir, storage_reader.string("path", "./data/state.db") or ""))

    enc = root.section("encryption", ("enabled", "require_cross_signed_senders", "pin_identities"))
    encryption = EncryptionConfig(
        enabled=enc.boolean("enabled", True),
        require_cross_signed_senders=enc.boolean("require_cross_signed_senders", True),
        pin_identities=enc.boolean("pin_identities", True),
    )

    rep = root.section("reports", ("enabled", "poll_interval", "reminder_after", "reminder_every", "digest"))
    digest_text = rep.string("digest")
    try:
        digest = Recurrence.parse(digest_text) if digest_text else None
    except ValueError as exc:
        raise ConfigError(rep.key("digest"), str(exc)) from None
    reminder_after = rep.duration("reminder_after", ReportsConfig.reminder_after, minimum=1)
    reports = ReportsConfig(
        enabled=rep.boolean("enabled", True), poll_interval=rep.number("poll_interval", 2.0, minimum=0.2),
        reminder_after=reminder_after,
        reminder_every=rep.duration("reminder_every", reminder_after or ReportsConfig.reminder_every, minimum=1),
        digest=digest,
    )

    policy_lists = root.string_list("policy_lists")
    for index, room in enumerate(policy_lists):
        if not re.match(r"^[!#][^\s]+$", room) or (room.startswith("#") and ":" not in room):
            raise ConfigError(f"policy_lists[{index}]", f"must be a room ID (!…) or an alias (#…:server), not {room!r}")
        if room in admin_rooms:
            raise ConfigError(f"policy_lists[{index}]", f"{room} is an admin room: a policy list is only read, never an admin room")

    conf = root.section("confirmations", ("timeout",))
    confirmations = ConfirmationsConfig(timeout=conf.number("timeout", 600.0, minimum=10))

    jobs_reader = root.section("jobs", ("max_concurrency",))
    max_concurrency = jobs_reader.number("max_concurrency", JobsConfig.max_concurrency, minimum=1)
    if max_concurrency != int(max_concurrency) or max_concurrency > 256:
        raise ConfigError(jobs_reader.key("max_concurrency"), f"must be a whole number from 1 to 256, not {max_concurrency:g}")
    jobs = JobsConfig(max_concurrency=int(max_concurrency))

    metrics_reader = root.section("metrics", ("bind",))
    metrics = MetricsConfig(bind=_bind_address(metrics_reader))

    limits_reader = root.section("rate_limits", ("exempt_bot",))
    rate_limits = RateLimitsConfig(exempt_bot=limits_reader.boolean("exempt_bot", True))
    approval_reader = root.section("approval", ("two_person",))
    approval = ApprovalConfig(two_person=tuple(" ".join(name.split()) for name in approval_reader.string_list("two_person")))

    mas = _mas(root, base_dir, environ)

    return Config(
        homeserver=homeserver,
        bot=bot,
        admin_token=admin_token,
        admin_rooms=admin_rooms,
        command_prefix=prefix,
        access=access,
        storage=storage,
        encryption=encryption,
        reports=reports,
        confirmations=confirmations,
        jobs=jobs,
        metrics=metrics,
        rate_limits=rate_limits,
        approval=approval,
        mas=mas,
        policy_lists=policy_lists,
    )


def _bind_address(reader: _Reader) -> tuple[str, int] | None:
    value = reader.string("bind")
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ConfigError(reader.key("bind"), f"must be host:port, like 127.0.0.1:9464, not {value!r}")
    return host.strip("[]"), int(port)


def _password(reader: _Reader, base_dir: Path, environ: Mapping[str, str]) -> Secret | None:
    if environ.get(ENV_PASSWORD):
        return Secret(environ[ENV_PASSWORD])
    password = reader.string("password")
    password_file = reader.string("password_file")
    if password and password_file:
        raise ConfigError("bot.password", "set either password or password_file, not both")
    if password_file:
        path = _path(base_dir, password_file)
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise ConfigError("bot.password_file", f"cannot read {path}: {exc.strerror}") from None
        if not text:
            raise ConfigError("bot.password_file", f"{path} is empty")
        return Secret(text)
    return Secret(password) if password else None


def check_command_names(config: Config, prompting: Collection[str], others: Collection[str]) -> None:
    """The commands `approval.two_person` names exist and ask for confirmation (`prompting`: the
    names of commands that do; `others`: every other command and verb). Called where the command
    table is known (bot/cli.py, bot/app.py); raises ConfigError naming the entry."""
    for index, name in enumerate(config.approval.two_person):
        if name in prompting:
            continue
        key = f"approval.two_person[{index}]"
        if name in others:
            raise ConfigError(key, f"{name} never asks for confirmation, so a second person could not confirm it")
        close = difflib.get_close_matches(name, list(prompting), n=1)
        raise ConfigError(key, f"there is no command {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""))


# What SIGHUP applies to a running bot (bot/app.py: App.reload): these keys, or of a section only the
# keys listed; a change anywhere else needs a restart.
LIVE_KEYS: dict[str, tuple[str, ...] | None] = {
    "access": None, "admin_rooms": None, "reports": ("poll_interval", "reminder_after", "reminder_every"),
}


def live_changes(old: Config, new: Config) -> list[str]:
    """What a reload changes in the keys it applies live, one phrase each (no secrets: roles, rooms, settings)."""
    changes = []
    for role in ROLES:
        before, after = getattr(old.access, role), getattr(new.access, role)
        added = [person for person in after if person not in before]
        removed = [person for person in before if person not in after]
        if added or removed:
            changes.append(f"access.{role}: " + ", ".join([*(f"+{p}" for p in added), *(f"-{p}" for p in removed)]))
    added = [room for room in new.admin_rooms if room not in old.admin_rooms]
    removed = [room for room in old.admin_rooms if room not in new.admin_rooms]
    if added or removed:
        changes.append("admin_rooms: " + ", ".join([*(f"+{r}" for r in added), *(f"-{r}" for r in removed)]))
    for name in LIVE_KEYS["reports"] or ():
        before, after = getattr(old.reports, name), getattr(new.reports, name)
        if before != after:
            changes.append(f"reports.{name}: {before:g} s → {after:g} s")
    return changes


def restart_needed(old_raw: Any, new_raw: Any) -> list[str]:
    """The keys outside LIVE_KEYS whose value differs between two YAML documents (`section.key`)."""
    old_raw = old_raw if isinstance(old_raw, Mapping) else {}
    new_raw = new_raw if isinstance(new_raw, Mapping) else {}
    found = []
    for key in sorted(set(old_raw) | set(new_raw), key=str):
        live = LIVE_KEYS.get(str(key), ())
        if live is None or old_raw.get(key) == new_raw.get(key):
            continue
        before, after = old_raw.get(key), new_raw.get(key)
        if isinstance(before, Mapping) or isinstance(after, Mapping):
            before = before if isinstance(before, Mapping) else {}
            after = after if isinstance(after, Mapping) else {}
            found += [f"{key}.{sub}" for sub in sorted(set(before) | set(after), key=str)
                      if sub not in live and before.get(sub) != after.get(sub)]
        else:
            found.append(str(key))
    return found


# libyaml's parser where PyYAML was built with it: the same safe subset, without ~2 ms of pure
# Python per read at every start and reload.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_raw(path: Path | str) -> Any:
    """The YAML document as written (for telling what a reload changed); ConfigError when it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError("--config", f"{path} is not valid YAML{where}: {problem}") from None


def load(path: Path | str, environ: Mapping[str, str]) -> Config:
    path = Path(path)
    return parse(load_raw(path), base_dir=path.resolve().parent, environ=environ)
