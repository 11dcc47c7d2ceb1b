"""Argument types: each turns one typed token into a validated value, or raises ArgumentError.

A type offers `label` (for usage lines), `parse(token, env)`, `describe(value)` (what the bot
understood, for confirmation prompts) and `load(raw)` (the value back from its JSON form, for
confirmations stored across restarts). Values are plain JSON types or subclasses of them, so a
parsed invocation can be stored as JSON and run later exactly as it was shown.

Some types also have `async resolve(value, resolver)`: aliases become room IDs before anything
runs, so that a confirmation acts on the room that was shown even if the alias moves.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

from bot.text.ids import UnsafePathSegment, check_segment, valid_server_name, valid_ulid
from bot.text.units import MAX_TIME_MS, format_ts, human_duration, human_size, parse_duration_ms
from bot.records import record

# Ranges of the numeric argument types: anything beyond is a usage error at parse time, never a
# value that fails later in the homeserver or in rendering (`--expires 3000000d` is year 10240).
MAX_DURATION_MS = 100 * 365 * 86_400_000  # 100y
MAX_SIZE = 1024**5  # 1 PiB
# Whole numbers default to what every homeserver database column and JSON parser holds.
DEFAULT_INT_MIN = -(2**31)
DEFAULT_INT_MAX = 2**31 - 1
MAX_NUMBER = 1e15
MAX_TOKEN_DIGITS = 30


class ArgumentError(ValueError):
    """A token does not fit its argument; the message names the token and what was expected."""


@record
class ParseEnv:
    """What parsing needs to know about the world: the homeserver's name, the clock."""

    server_name: str
    now_ms: int


class AliasResolver(Protocol):
    async def resolve_alias(self, alias: str) -> str: ...


@runtime_checkable
class ArgType(Protocol):
    label: str

    def parse(self, token: str, env: ParseEnv) -> Any: ...

    def describe(self, value: Any) -> str: ...

    def load(self, raw: Any) -> Any: ...


def _segment(token: str, what: str) -> str:
    try:
        return check_segment(token)
    except UnsafePathSegment as exc:
        raise ArgumentError(f"{_shown(token)} is not a valid {what}: {exc}") from None


class _StrValue(str):
    """Base of identifier values: a str that knows how to parse and describe itself."""

    label = "text"

    @classmethod
    def describe(cls, value: Any) -> str:
        return str(value)

    @classmethod
    def load(cls, raw: Any) -> Any:
        return cls(raw)


class UserID(_StrValue):
    """`@local:server`; a bare `local` means a user of this homeserver."""

    label = "user"

    @property
    def localpart(self) -> str:
        return self[1:].split(":", 1)[0]

    @property
    def server_name(self) -> str:
        return self.split(":", 1)[1]

    def is_local(self, server_name: str) -> bool:
        return self.server_name == server_name

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> UserID:
        value = token.strip()
        if not value.startswith("@"):
            if ":" in value or not value:
                raise ArgumentError(f"{_shown(token)} is not a user ID: expected @name:server or a bare local name")
            value = f"@{value}:{env.server_name}"
        localpart, sep, server = value[1:].partition(":")
        if not sep or not localpart or not server:
            raise ArgumentError(f"{_shown(token)} is not a user ID: expected @name:server")
        if not valid_server_name(server):
            raise ArgumentError(f"{_shown(token)} is not a user ID: {_shown(server)} is not a server name")
        if any(ch.isspace() or ord(ch) < 0x21 or ord(ch) > 0x7E for ch in localpart):
            raise ArgumentError(f"{_shown(token)} is not a user ID: the name part may only use printable ASCII")
        if len(value) > 255:
            raise ArgumentError(f"{_shown(token)} is not a user ID: longer than 255 characters")
        _segment(value, "user ID")
        return cls(value)


class LocalUserID(UserID):
    """A user of this homeserver (most account endpoints only work on local users)."""

    label = "user"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> LocalUserID:
        value = UserID.parse(token, env)
        if value.server_name != env.server_name:
            raise ArgumentError(f"{_shown(token)} is not a user of this homeserver ({env.server_name})")
        return cls(value)


class RoomID(_StrValue):
    """A room ID: `!opaque:server`, or the server-less `!opaque` of room version 12."""

    label = "room"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> RoomID:
        value = token.strip()
        if not re.match(r"^![^\s:]+(?::[^\s]+)?$", value):
            raise ArgumentError(f"{_shown(token)} is not a room ID: expected !opaque:server or !opaque")
        opaque, sep, server = value[1:].partition(":")
        if sep and not valid_server_name(server):
            raise ArgumentError(f"{_shown(token)} is not a room ID: {_shown(server)} is not a server name")
        if not sep and not re.match(r"^[A-Za-z0-9_\-]{43}$", opaque):
            raise ArgumentError(
                f"{_shown(token)} is not a room ID: a room ID without a server (room version 12) "
                "is 43 characters of URL-safe base64"
            )
        _segment(value, "room ID")
        return cls(value)


class RoomAlias(_StrValue):
    label = "alias"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> RoomAlias:
        value = token.strip()
        if not value.startswith("#") or len(value) < 2:
            raise ArgumentError(f"{_shown(token)} is not a room alias: expected #name:server")
        if ":" not in value:
            value = f"{value}:{env.server_name}"
        local, _, server = value[1:].partition(":")
        if not local or not valid_server_name(server) or any(ch.isspace() for ch in local):
            raise ArgumentError(f"{_shown(token)} is not a room alias: expected #name:server")
        _segment(value, "room alias")
        return cls(value)


class RoomRef(_StrValue):
    """A room ID or an alias; an alias is resolved to the room ID before anything runs."""

    label = "room"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> str:
        if token.startswith("#"):
            return RoomAlias.parse(token, env)
        if token.startswith("!"):
            return RoomID.parse(token, env)
        raise ArgumentError(f"{_shown(token)} is not a room: expected a room ID (!…) or an alias (#…)")

    @classmethod
    async def resolve(cls, value: str, resolver: AliasResolver) -> RoomID:
        if isinstance(value, RoomAlias) or value.startswith("#"):
            return RoomID(await resolver.resolve_alias(value))
        return RoomID(value)

    @classmethod
    def load(cls, raw: Any) -> RoomID:
        return RoomID(raw)


class EventID(_StrValue):
    label = "event"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> EventID:
        value = token.strip()
        if not re.match(r"^\$[^\s]+$", value) or len(value) > 255:
            raise ArgumentError(f"{_shown(token)} is not an event ID: expected $opaque")
        try:
            check_segment(value, allow_slash=True)  # room versions 3+: base64 with `/` and `+`
        except UnsafePathSegment as exc:
            raise ArgumentError(f"{_shown(token)} is not a valid event ID: {exc}") from None
        return cls(value)


_MEDIA_ID_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


class MxcURI(_StrValue):
    """`mxc://server/media_id`."""

    label = "mxc"

    @property
    def server_name(self) -> str:
        return self[len("mxc://") :].split("/", 1)[0]

    @property
    def media_id(self) -> str:
        return self[len("mxc://") :].split("/", 1)[1]

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> MxcURI:
        value = token.strip()
        if not value.startswith("mxc://"):
            raise ArgumentError(f"{_shown(token)} is not a media URI: expected mxc://server/media_id")
        server, sep, media_id = value[len("mxc://") :].partition("/")
        if not sep or not valid_server_name(server) or not _MEDIA_ID_RE.match(media_id):
            raise ArgumentError(f"{_shown(token)} is not a media URI: expected mxc://server/media_id")
        return cls(value)


class ServerName(_StrValue):
    label = "server"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> ServerName:
        value = token.strip()
        if not valid_server_name(value):
            raise ArgumentError(f"{_shown(token)} is not a server name: expected a host name with an optional :port")
        return cls(_segment(value, "server name"))


class Identifier(_StrValue):
    """An opaque identifier that becomes one path segment (device ID, provider, token, …)."""

    label = "id"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> Identifier:
        if len(token) > 255:
            raise ArgumentError(f"{token[:40]!r}… is too long for an identifier")
        return cls(_segment(token, "identifier"))


class MASID(_StrValue):
    """The ID of something in matrix-authentication-service (a session, a link, a provider): a ULID."""

    label = "mas-id"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> MASID:
        value = token.strip().upper()
        if not valid_ulid(value):
            raise ArgumentError(f"{token!r} is not a MAS ID: expected 26 characters like 01J44RKQYM4G3TNVANTMTDYTX6")
        return cls(value)


class EmailAddress(_StrValue):
    """An e-mail address (`name@domain`). Its form only; whether it exists is the mail system's business."""

    label = "email"
    _RE = re.compile(r"^[^\s@<>()\[\],;:\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?)+$")

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> EmailAddress:
        value = token.strip()
        if len(value) > 254 or not cls._RE.match(value):
            raise ArgumentError(f"{token!r} is not an e-mail address: expected name@example.org")
        return cls(value)


class Text(_StrValue):
    """Free text (a reason, a message, a password). Never used in a path."""

    label = "text"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> Text:
        if not token:
            raise ArgumentError("expected some text, got an empty string")
        return cls(token)


class Size(int):
    """A size in bytes: `512`, `10K`, `10M`, `1.5G` (binary multiples: K = 1024)."""

    label = "size"
    _UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> Size:
        match = re.match(r"^\s*(\d{1,15}(?:\.\d{1,6})?)\s*([kmgt]?)(?:i?b)?\s*$", token[:64], re.IGNORECASE)
        if not match or len(token) > 64:
            raise ArgumentError(f"{_shown(token)} is not a size: expected a number with K, M, G or T, like 10M "
                                f"(at most {human_size(MAX_SIZE)})")
        number = float(match.group(1)) * cls._UNITS[match.group(2).lower()]
        if number > MAX_SIZE:
            raise ArgumentError(f"{_shown(token)} is too large: at most {human_size(MAX_SIZE)}")
        return cls(int(number))

    bounds = f"up to {human_size(MAX_SIZE)}"

    @classmethod
    def describe(cls, value: Any) -> str:
        return f"{human_size(int(value))} ({int(value):,} bytes)"

    @classmethod
    def load(cls, raw: Any) -> Size:
        return cls(int(raw))


class Duration(int):
    """A length of time in milliseconds: `90s`, `30m`, `12h`, `30d`, `2w`, `1y`, `1d12h`."""

    label = "duration"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> Duration:
        return cls(duration_ms(token))

    bounds = "up to 100y"

    @classmethod
    def describe(cls, value: Any) -> str:
        return human_duration(int(value))

    @classmethod
    def load(cls, raw: Any) -> Duration:
        return cls(int(raw))


class TimerDuration(Duration):
    """How long an action lasts before it ends by itself (`--for`): from 10 s."""

    minimum = 10_000
    bounds = "from 10s up to 100y"

    @classmethod
    def parse(cls, token: str, env: ParseEnv) -> TimerDuration:
        value = cls(duration_ms(token))
        if value < cls.minimum:
            raise ArgumentError(f"{_shown(token)} is too short: an action ends by itself after 10s at the soonest")
        return value

    @classmethod
    def load(cls, raw: Any) -> TimerDuration:
        return cls(int(raw))


def _shown(token: str) -> str:
    """A token quoted in an error message, cut when long (a 5,000-digit number is not echoed whole)."""
    return repr(token) if len(token) <= 40 else repr(token[:40]) + "…"


def duration_ms(token: str) -> int:
    ms = parse_duration_ms(token)
    if ms is None or ms <= 0:
        raise ArgumentError(f"{_shown(token)} is not a duration: expected a number with s, m, h, d, w or y, "
                            "like 30d (up to 100y)")
    if ms > MAX_DURATION_MS:
        raise ArgumentError(f"{_shown(token)} is too long: at most 100y")
    return ms


class Timestamp:
    """A point in time, in milliseconds since the epoch.

    Accepts a date (`2024-01-31`, midnight UTC), a date and time (`2024-01-31T12:00`, UTC unless
    an offset is given), or a duration, which counts back from now when `past` and forward
    from now otherwise (`--before 30d`, `--expires 7d`).
    """

    bounds = "a date from 1970-01-01 to 9999-12-31, or a duration up to 100y"

    def __init__(self, *, past: bool) -> None:
        self.past = past
        self.label = "date|duration"

    def parse(self, token: str, env: ParseEnv) -> int:
        moment = self._parse(token, env)
        if not 0 <= moment <= MAX_TIME_MS:
            raise ArgumentError(f"{_shown(token)} is out of range: expected a date from 1970-01-01 to 9999-12-31")
        return moment

    def _parse(self, token: str, env: ParseEnv) -> int:
        text = token.strip()
        if len(text) > 64:
            raise ArgumentError(f"{_shown(token)} is not a date: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or a duration like 30d")
        if text and text[0].isdigit() and text[-1].lower() in "smhdwyn" and not text[-1].isdigit() and "-" not in text:
            ms = duration_ms(text)
            return env.now_ms - ms if self.past else env.now_ms + ms
        if text.lower() == "now":
            return env.now_ms
        for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
            try:
                moment = datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
                return int(moment.timestamp() * 1000)
            except ValueError:
                continue
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise ArgumentError(
                f"{_shown(token)} is not a date: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or a duration like 30d"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        try:
            return int(moment.timestamp() * 1000)
        except (OverflowError, ValueError, OSError):
            raise ArgumentError(f"{_shown(token)} is out of range: expected a date from 1970-01-01 to 9999-12-31") from None

    def describe(self, value: Any) -> str:
        return format_ts(int(value))

    def load(self, raw: Any) -> int:
        return int(raw)


class Int:
    """A whole number within bounds; without explicit bounds, what a 32-bit column holds."""

    def __init__(self, *, minimum: int | None = None, maximum: int | None = None, label: str = "number") -> None:
        self.minimum = DEFAULT_INT_MIN if minimum is None else minimum
        self.maximum = DEFAULT_INT_MAX if maximum is None else maximum
        self.label = label

    @property
    def bounds(self) -> str:
        return f"{self.minimum:,} to {self.maximum:,}"

    def parse(self, token: str, env: ParseEnv) -> int:
        digits = token.strip().replace("_", "").replace(",", "")
        if len(digits) > MAX_TOKEN_DIGITS:
            raise ArgumentError(f"{_shown(token)} is out of range: expected {self.bounds}")
        try:
            value = int(digits)
        except ValueError:
            raise ArgumentError(f"{_shown(token)} is not a whole number") from None
        if value < self.minimum:
            raise ArgumentError(f"{_shown(token)} is too small: at least {self.minimum:,}")
        if value > self.maximum:
            raise ArgumentError(f"{_shown(token)} is too large: at most {self.maximum:,}")
        return value

    def describe(self, value: Any) -> str:
        return f"{int(value):,}"

    def load(self, raw: Any) -> int:
        return int(raw)


class Number:
    def __init__(self, *, minimum: float | None = None, maximum: float = MAX_NUMBER, label: str = "number") -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.label = label

    @property
    def bounds(self) -> str:
        return f"{self.minimum:g} to {self.maximum:g}" if self.minimum is not None else f"up to {self.maximum:g}"

    def parse(self, token: str, env: ParseEnv) -> float:
        if len(token) > 64:
            raise ArgumentError(f"{_shown(token)} is out of range: expected {self.bounds}")
        try:
            value = float(token)
        except ValueError:
            raise ArgumentError(f"{_shown(token)} is not a number") from None
        if not math.isfinite(value) or (self.minimum is not None and value < self.minimum) or value > self.maximum:
            raise ArgumentError(f"{_shown(token)} is out of range: expected {self.bounds}")
        return value

    def describe(self, value: Any) -> str:
        return f"{float(value):g}"

    def load(self, raw: Any) -> float:
        return float(raw)


class Choice:
    def __init__(self, *choices: str) -> None:
        self.choices = choices
        self.label = "|".join(choices)

    def parse(self, token: str, env: ParseEnv) -> str:
        value = token.strip().lower()
        if value not in self.choices:
            raise ArgumentError(f"{_shown(token)} is not one of {', '.join(self.choices)}")
        return value

    def describe(self, value: Any) -> str:
        return str(value)

    def load(self, raw: Any) -> str:
        return str(raw)


def describe_value(argtype: Any, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(describe_value(argtype, item) for item in value)
    return str(argtype.describe(value))


def load_value(argtype: Any, raw: Any) -> Any:
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, list):
        return [argtype.load(item) for item in raw]
    return argtype.load(raw)


class EventOrTimestamp:
    """A cut-off: an event ID (`$…`), or a date or duration counting back from now."""

    label = "date|duration|event"

    bounds = Timestamp.bounds

    def __init__(self) -> None:
        self._time = Timestamp(past=True)

    def parse(self, token: str, env: ParseEnv) -> Any:
        if token.strip().startswith("$"):
            return EventID.parse(token, env)
        return self._time.parse(token, env)

    def describe(self, value: Any) -> str:
        return str(value) if isinstance(value, str) else self._time.describe(value)

    def load(self, raw: Any) -> Any:
        return EventID(raw) if isinstance(raw, str) else int(raw)
