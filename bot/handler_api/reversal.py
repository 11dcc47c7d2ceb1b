"""How an action is taken back, as its command declares it (`@command.undo`, bot/handler_api/spec.py).

A command's undo declaration runs just before the action and returns a `Reversal`:
- `inverse`: the invocation that takes the action back (`user lock @x --undo` for `user lock @x`),
  run later through the normal command path (roles, staff protection, confirmation, audit);
- `state`: a probe of the state the action changes (is @x locked?). The pipeline reads it
  before and after the action; the value after is "the state the action left", and an undo only
  runs while the server still shows it (bot/runtime/undo.py);
- `note`: what the undo cannot restore (the homeserver's deletion of a dismissed report).

Probes are small typed values, stored as JSON with the undo record so that an undo still works
after a restart; each kind is registered here by name, and this is the only place that decodes
them. Reading one never changes anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, ClassVar

from bot.homeserver.admin_api.errors import NotFound
from bot.handler_api.spec import Command, CommandError
from bot.homeserver.accounts.errors import AccountRefused
from bot.records import record

if TYPE_CHECKING:
    from bot.handler_api.context import Context

# How many files one undo may name: past that, an undo would be a bulk job of its own, and the
# reply says how to release the files instead.
MAX_UNDO_FILES = 1000
PROBE_CONCURRENCY = 8


class InvalidProbe(Exception):
    """A stored probe this version of the bot cannot read."""


@record
class Inverse:
    """The invocation that takes an action back: a command and its arguments (typed or JSON form)."""

    command: Command
    args: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"command": self.command.name, "args": {k: v for k, v in self.args.items()}}


@record
class Reversal:
    """How an action is taken back: the invocation that does it (or why none can), the state to probe, a note."""

    inverse: Inverse | None  # None: nothing can take it back (`why` says so)
    state: Probe | None
    note: str = ""  # what the undo does not restore
    why: str = ""  # with no inverse: why there is no undo


def no_undo(why: str) -> Reversal:
    """An invocation of a reversible command that cannot be taken back this time (too many files…)."""
    return Reversal(None, None, why=why)


# -- probes: read the state an action changes


_PROBES: dict[str, type[Probe]] = {}


def probe(kind: str):  # type: ignore[no-untyped-def]
    def register(cls):  # type: ignore[no-untyped-def]
        cls.kind = kind
        _PROBES[kind] = cls
        return cls

    return register


class Probe:
    kind: ClassVar[str] = ""

    @property
    def key(self) -> str:
        """What state this is, so that later actions on the same state can be found."""
        raise NotImplementedError

    async def read(self, ctx: Context) -> Any:
        """The state now, as a JSON value."""
        raise NotImplementedError

    def describe(self, value: Any) -> str:
        """The state in words, for "it is … now"."""
        return str(value)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]


def load_probe(data: Any) -> Probe:
    if not isinstance(data, dict) or data.get("kind") not in _PROBES:
        raise InvalidProbe(f"unknown state probe {data.get('kind') if isinstance(data, dict) else data!r}")
    cls = _PROBES[data["kind"]]
    try:
        values = {f.name: data[f.name] for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**values)
    except (KeyError, TypeError) as exc:
        raise InvalidProbe(f"incomplete state probe {data['kind']}: {exc}") from None


_FLAG_WORDS = {"locked": "locked", "suspended": "suspended", "shadow_banned": "shadow-banned", "admin": "a server admin",
               "deactivated": "deactivated"}


# Flags that matrix-authentication-service holds for the accounts it keeps (bot/homeserver/accounts/): the
# commands that change them go there, and so does the probe.
_MAS_FLAGS = frozenset({"locked", "admin"})


@probe("account-flag")
@record
class AccountFlag(Probe):
    """One flag of a local account: where the account lives (MAS for the flags it holds), else
    GET v2/users/<user_id>."""

    user: str
    flag: str

    @property
    def key(self) -> str:
        return f"account:{self.user}:{self.flag}"

    async def read(self, ctx: Context) -> Any:
        if self.flag in _MAS_FLAGS:
            try:
                home = await ctx.accounts.locate(self.user)
            except AccountRefused as exc:
                raise CommandError(str(exc)) from exc
            if home.in_mas and home.mas_user is not None:
                return bool(getattr(home.mas_user, self.flag))
        return bool(getattr(await ctx.api.user_details(self.user), self.flag))

    def describe(self, value: Any) -> str:
        word = _FLAG_WORDS.get(self.flag, self.flag)
        return f"{self.user} is {'' if value else 'not '}{word}"


@probe("ratelimit")
@record
class RateLimitOverride(Probe):
    """A local account's rate-limit override (messages per second and burst), or none."""

    user: str

    @property
    def key(self) -> str:
        return f"ratelimit:{self.user}"

    async def read(self, ctx: Context) -> Any:
        found = await ctx.api.ratelimit(self.user)
        return None if found is None else [found.messages_per_second, found.burst_count]

    def describe(self, value: Any) -> str:
        if value is None:
            return f"{self.user} has no rate-limit override"
        return f"{self.user}'s override is {value[0]:g} messages/s, burst {value[1]:g}"


@probe("room-blocked")
@record
class RoomBlocked(Probe):
    """Whether a room is blocked."""

    room: str

    @property
    def key(self) -> str:
        return f"room-blocked:{self.room}"

    async def read(self, ctx: Context) -> Any:
        blocked, _ = await ctx.api.block_status(self.room)
        return bool(blocked)

    def describe(self, value: Any) -> str:
        return f"{self.room} is {'' if value else 'not '}blocked"


def _split_mxc(mxc: str) -> tuple[str, str]:
    server, _, media_id = mxc[len("mxc://"):].partition("/")
    return server, media_id


@probe("media")
@record
class MediaFlag(Probe):
    """A file's quarantine (`quarantined`) or protection (`protected`)."""

    mxc: str
    flag: str

    @property
    def key(self) -> str:
        return f"media:{self.mxc}:{self.flag}"

    async def read(self, ctx: Context) -> Any:
        info = await ctx.api.media_info(*_split_mxc(self.mxc))
        return bool(info.quarantined_by) if self.flag == "quarantined" else bool(info.safe_from_quarantine)

    def describe(self, value: Any) -> str:
        word = "quarantined" if self.flag == "quarantined" else "protected from quarantine"
        return f"{self.mxc} is {'' if value else 'not '}{word}"


@probe("files-quarantined")
@record
class FilesQuarantined(Probe):
    """Which of these files are quarantined (a user's media quarantined at once). `user`: their
    uploader, read through the user's media list (a page per 500 files instead of one request per file)."""

    user: str
    files: list[str] = field(default_factory=list)  # mxc URIs

    @property
    def key(self) -> str:
        return f"user-media-quarantine:{self.user}"

    async def read(self, ctx: Context) -> Any:
        wanted = set(self.files)
        quarantined: set[str] = set()
        token: str | None = None
        while True:
            page = await ctx.api.user_media(self.user, from_token=token, limit=500, order_by="created_ts", direction="f")
            for media in page.items:
                mxc = f"mxc://{ctx.server_name}/{media.media_id}"
                if mxc in wanted and media.quarantined_by:
                    quarantined.add(mxc)
            if not page.next_token or not page.items:
                break
            token = page.next_token
        return sorted(quarantined)

    def describe(self, value: Any) -> str:
        return f"{len(value)} of the {len(self.files)} files are quarantined"


@probe("takedown")
@record
class TakedownState(Probe):
    """What a takedown changed that can be taken back: the account's suspension, and which of the
    files it quarantined are quarantined (read like `FilesQuarantined`)."""

    user: str
    files: list[str] = field(default_factory=list)  # mxc URIs

    @property
    def key(self) -> str:
        return f"takedown:{self.user}"

    async def read(self, ctx: Context) -> Any:
        suspended = bool((await ctx.api.user_details(self.user)).suspended)
        files = await FilesQuarantined(self.user, self.files).read(ctx) if self.files else []
        return {"suspended": suspended, "quarantined": files}

    def describe(self, value: Any) -> str:
        return (f"{self.user} is {'' if value.get('suspended') else 'not '}suspended and "
                f"{len(value.get('quarantined') or [])} of the {len(self.files)} files it quarantined are quarantined")


@probe("files-each")
@record
class EachFileQuarantined(Probe):
    """Which of these files (of any uploader, remote ones too) are quarantined: one request per file."""

    files: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return "files:" + ",".join(sorted(self.files))[:500]

    async def read(self, ctx: Context) -> Any:
        gate = asyncio.Semaphore(PROBE_CONCURRENCY)

        async def one(mxc: str) -> str | None:
            async with gate:
                try:
                    info = await ctx.api.media_info(*_split_mxc(mxc))
                except NotFound:
                    return None
                return mxc if info.quarantined_by else None

        return sorted(m for m in await asyncio.gather(*(one(m) for m in self.files)) if m)

    def describe(self, value: Any) -> str:
        return f"{len(value)} of the {len(self.files)} files are quarantined"


@probe("report")
@record
class ReportState(Probe):
    """A report's state in the bot's queue, and who holds it."""

    report: str  # `12` or `u3`

    @property
    def key(self) -> str:
        return f"report:{self.report}"

    async def read(self, ctx: Context) -> Any:
        from bot.handler_api.report_refs import ReportRef

        record = await ctx.reports.stored(ReportRef.parse(self.report))
        if record is None:
            return None
        return {"state": record.state, "claimed_by": record.claimed_by}

    def describe(self, value: Any) -> str:
        if not value:
            return f"the bot's queue no longer has report {self.report}"
        holder = f" by {value['claimed_by']}" if value.get("claimed_by") and value.get("state") == "claimed" else ""
        return f"report {self.report} is {value['state']}{holder}"
