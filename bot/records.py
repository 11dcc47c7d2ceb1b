"""Plain data: `record`, the decorator every record type of the bot is declared with, and the
records the store reads and writes (no sqlite here): what commands, jobs, the report inbox and the
renderers pass around without depending on the database.
"""

from __future__ import annotations

import dataclasses
import reprlib
import time
from collections.abc import Mapping
from dataclasses import FrozenInstanceError
from typing import Any, TypeVar

T = TypeVar("T")


def record(cls: type[T], /) -> type[T]:
    """A frozen dataclass — fields, `__init__`, `dataclasses.replace`/`asdict`/`fields`, match
    arguments, equality, hashing and `repr` as `@dataclass(frozen=True)` has them — whose `repr`,
    equality, hash and immutability are shared functions instead of methods compiled for each
    class, and whose `__init__` is compiled when the first one is made.

    Why: on the Pythons before 3.13, `dataclass` compiles every generated method with its own
    `exec`, six for a frozen class; the bot declares some two hundred record types, most of which a
    start never makes, and that was two thirds of the time its modules take to import, the largest
    part of its start over a bare nio bot (issue 23). A record's fields are set once, by its
    `__init__` (`__post_init__` may still set derived ones with `object.__setattr__`); setting or
    deleting any attribute afterwards raises `FrozenInstanceError`, as for a frozen dataclass."""

    own = dict(vars(cls))
    if own.get("__hash__", ...) is None and "__eq__" in own:
        del own["__hash__"]  # Python's own None for a class that defines __eq__: dataclass hashes the fields
    cls = dataclasses.dataclass(cls, init=False, repr=False, eq=False)
    for name, shared in (("__init__", _init_on_first_use(cls)), ("__repr__", _repr), ("__eq__", _eq),
                         ("__hash__", _hash), ("__setattr__", _set_once), ("__delattr__", _no_delete)):
        if name not in own:
            setattr(cls, name, shared)
    return cls


def from_mapping(cls: type[T], data: Mapping[str, Any]) -> T:
    """A record of `cls` from a mapping that may hold more keys than `cls` has fields (they are left
    out), as `cls(**{k: v for k, v in data.items() if k in fields})` makes it, only faster: an
    export builds one for each of 10,000 rows. A record type without `__post_init__` or fields
    left out of `__init__` gets its instance dictionary filled in one go (the dictionary is what a
    record's `__init__` fills: nothing is skipped); any other class, or missing fields, goes through
    `__init__`, which also raises the same error."""
    plan = cls.__dict__.get("_record_mapping_plan")
    if plan is None:
        plan = _mapping_plan(cls)
        type.__setattr__(cls, "_record_mapping_plan", plan)
    names, defaults, factories, required, direct = plan
    if not direct or not required <= data.keys():
        return cls(**{key: value for key, value in data.items() if key in names})
    made = object.__new__(cls)
    values = made.__dict__
    values.update(defaults)
    values.update(data)
    for extra in data.keys() - names:
        del values[extra]
    for name, factory in factories:
        if name not in data:
            values[name] = factory()
    return made


def _mapping_plan(cls: type) -> tuple[frozenset[str], dict[str, Any], tuple[tuple[str, Any], ...], frozenset[str], bool]:
    every = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = frozenset(f.name for f in every)
    defaults = {f.name: f.default for f in every if f.default is not dataclasses.MISSING}
    factories = tuple((f.name, f.default_factory) for f in every if f.default_factory is not dataclasses.MISSING)
    required = names - defaults.keys() - {name for name, _ in factories}
    direct = (getattr(cls, "__setattr__", None) is _set_once and not hasattr(cls, "__post_init__")
              and all(f.init for f in every) and len(every) == len(cls.__dataclass_fields__))  # type: ignore[attr-defined]
    return names, defaults, factories, frozenset(required), direct


def _init_on_first_use(cls: type) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        compiled = _frozen_init(cls)
        type.__setattr__(cls, "__init__", compiled)
        compiled(self, *args, **kwargs)

    return __init__


def _frozen_init(cls: type) -> Any:
    """The `__init__` that `@dataclass(frozen=True)` writes for cls's fields, written for a twin
    class with the same fields: it sets each with `object.__setattr__`, as fast as a frozen
    dataclass's (not through `_set_once`, twice as slow), and calls cls's `__post_init__`."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": cls.__module__, "__qualname__": cls.__qualname__,
                                 "__annotations__": annotations}
    for f in dataclasses.fields(cls):
        annotations[f.name] = f.type
        namespace[f.name] = dataclasses.field(default=f.default, default_factory=f.default_factory, init=f.init,
                                              kw_only=f.kw_only)
    if hasattr(cls, "__post_init__"):
        namespace["__post_init__"] = cls.__post_init__
    twin = dataclasses.dataclass(type(cls.__name__, (), namespace), frozen=True, repr=False, eq=False)
    return twin.__init__


def _fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """The names in `repr`, compared, hashed — as `dataclass` picks them — worked out once a class."""
    known = cls.__dict__.get("_record_fields")
    if known is None:
        every = dataclasses.fields(cls)
        known = (tuple(f.name for f in every if f.repr),
                 tuple(f.name for f in every if f.compare),
                 tuple(f.name for f in every if (f.compare if f.hash is None else f.hash)))
        type.__setattr__(cls, "_record_fields", known)
    return known  # type: ignore[no-any-return]


@reprlib.recursive_repr()
def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _fields(type(self))[0])
    return f"{type(self).__qualname__}({shown})"


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = _fields(type(self))[1]
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in _fields(type(self))[2]))


def _set_once(self: Any, name: str, value: Any) -> None:
    if name in self.__dict__ or name not in self.__dataclass_fields__:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")
    object.__setattr__(self, name, value)


def _no_delete(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def now_ms() -> int:
    return int(time.time() * 1000)


@record
class PendingConfirmation:
    """A prompt that waits for its confirmation code, and how it was decided."""

    code: str
    command: str
    invocation_json: str | None  # bot/handler_api/invocation.py; cleared once decided (it may hold a password)
    sender: str
    room_id: str
    command_event_id: str
    thread_root: str | None
    prompt_event_id: str | None
    summary: str
    created_ts: int
    expires_ts: int
    state: str
    decided_by: str | None


@record
class AuditEntry:
    """A row of the audit log: who ran which command, where, when, and what came of it."""

    id: int
    ts: int
    sender: str
    room_id: str
    command: str
    args: str
    result: str
    detail: str
    invocation_json: str | None = None  # what ran: command and typed arguments, secrets left out
    requested_by: str | None = None  # who asked, when someone else confirmed
    confirmation: str | None = None  # the confirmation code it came from
    job_id: int | None = None
    undoes: int | None = None  # the action (audit row) this row took back
    origin: str | None = None  # the event that caused it (bot/runtime/journal.py: the command journal)


@record
class UndoRecord:
    """How to take one action back (bot/runtime/undo.py), keyed by the action's audit row. Without an
    inverse, `note` says why it cannot be taken back."""

    action: int
    command: str
    state_key: str | None
    inverse_json: str | None  # {"command": …, "args": {…}}
    probe_json: str | None  # bot/handler_api/reversal.py: what reads the state the action changed
    before_json: str | None  # that state before the action…
    left_json: str | None  # …and the state the action left
    note: str
    created_ts: int
    undone_by: int | None  # the audit row of the undo (0 while it runs)
    undone_ts: int | None

    @property
    def changed(self) -> bool:
        return self.before_json != self.left_json


@record
class JobRecord:
    """A job: its invocation, saved state, status, where it reports its progress and its result."""

    id: int
    kind: str  # the command's name
    invocation_json: str | None  # bot/handler_api/invocation.py; None for a bulk job of an older version
    state: dict[str, Any]
    status: str
    summary: str
    sender: str
    room_id: str
    reply_to: str | None
    thread_root: str | None
    progress_event_id: str | None
    result_text: str
    created_ts: int
    updated_ts: int
    cancel_requested_by: str | None = None


@record
class ReportFacts:
    """What a report says; it does not change once filed. `kind` is "event" or "user"."""

    kind: str
    report_id: int
    received_ts: int
    reporter: str
    target: str | None = None  # the reported user
    room_id: str | None = None
    room_name: str | None = None
    room_alias: str | None = None
    event_id: str | None = None
    reason: str | None = None
    score: int | None = None
    excerpt: str | None = None  # what the notice shows of the reported event


@record
class ReportRecord:
    """A report and what the moderation team did with it."""

    facts: ReportFacts
    state: str  # open | claimed | resolved | dismissed
    claimed_by: str | None
    claimed_ts: int | None
    closed_by: str | None
    closed_ts: int | None
    note: str | None
    redacted_by: str | None
    redacted_ts: int | None
    post_state: str  # none | pending | posted | pending_summary | batch:<txn> (a summary being sent) | summarised
    updated_ts: int
    assigned_by: str | None = None  # who gave the claim to `claimed_by` (report assign), if not themselves
    deleted_ts: int | None = None  # when the bot deleted it on the homeserver (dismiss); it may be reopened since


@record
class ReportNote:
    """A note a moderator wrote on a report (inside text, yet bounded where shown)."""

    author: str
    ts: int
    text: str


@record
class ReportHistory:
    """What the bot's own report store holds from before one report: how many reports name the
    same user or the same event, and what became of the reporter's earlier reports."""

    about_target: int
    about_event: int
    reporter_filed: int
    reporter_dismissed: int


@record
class ReportQuery:
    """Which of the bot's reports to list. Every field narrows; None leaves it open."""

    states: tuple[str, ...] | None = ("open", "claimed")
    claimed_by: str | None = None
    received_before: int | None = None  # ms since the epoch
    reporter: str | None = None
    target: str | None = None
    room_id: str | None = None
    deleted_on_server: bool | None = None


@record
class TeamAction:
    """Something the team did to an account, from the audit log (the dossier's part)."""

    entry: int  # the audit row
    ts: int
    sender: str
    command: str
    args: str
    detail: str
    undone_by: int | None = None  # the audit row of its undo
    undo_available: bool = False  # it recorded an undo that has not been used


@record
class TimerRecord:
    """An action that ends by itself (`--for`): its undo runs at `due_ts` (bot/runtime/timers.py)."""

    id: int
    action: int  # the audit row of the action; its undo record says how to take it back
    command: str
    summary: str
    requester: str
    room_id: str
    due_ts: int
    created_ts: int
    state: str  # pending, firing, done, refused, failed, cancelled
    decided_by: str | None = None
    decided_ts: int | None = None
    result: str = ""


@record
class ScheduleRecord:
    """A command that runs on a schedule (bot/runtime/schedules.py)."""

    id: int
    author: str
    room_id: str
    when_json: str  # bot/handler_api/when.py
    when_text: str
    invocation_json: str  # the command, as typed and checked when scheduled (bot/handler_api/invocation.py)
    summary: str
    next_ts: int
    state: str  # unconfirmed, active, paused, stopped (its author lost the role), removed
    running: int = 0
    runs: int = 0
    last_run_ts: int | None = None
    last_result: str = ""
    note: str = ""
    created_ts: int = 0
