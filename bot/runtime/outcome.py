"""What became of one invocation, typed: the pipeline returns one of these, never a word to compare.

`result` is the word the audit log and the metrics keep for it ("ok", "refused", "error M_FORBIDDEN"…):
it is derived here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    @property
    def result(self) -> str:
        raise NotImplementedError

    @property
    def ok(self) -> bool:
        """It ran (or its job started) and succeeded."""
        return False


@dataclass(frozen=True)
class Answered(Outcome):
    """It ran and was answered."""

    @property
    def result(self) -> str:
        return "ok"

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True)
class Started(Outcome):
    """Its job was started; the job's own message answers from here."""

    job_id: int

    @property
    def result(self) -> str:
        return "ok"

    @property
    def ok(self) -> bool:
        return True


@dataclass(frozen=True)
class Prompted(Outcome):
    """It waits for confirmation under this code."""

    code: str

    @property
    def result(self) -> str:
        return "pending"


@dataclass(frozen=True)
class DryRun(Outcome):
    """The prompt was shown and nothing waits."""

    @property
    def result(self) -> str:
        return "dry-run"


@dataclass(frozen=True)
class Refused(Outcome):
    reason: str = ""

    @property
    def result(self) -> str:
        return "refused"


@dataclass(frozen=True)
class Usage(Outcome):
    """The arguments did not fit."""

    @property
    def result(self) -> str:
        return "usage"


@dataclass(frozen=True)
class Unknown(Outcome):
    """No such command (in this version of the bot)."""

    @property
    def result(self) -> str:
        return "unknown"


@dataclass(frozen=True)
class Failed(Outcome):
    """The homeserver said no (its errcode), or the bot could not do its part (no errcode)."""

    errcode: str | None = None

    @property
    def result(self) -> str:
        return f"error {self.errcode}" if self.errcode else "error"


@dataclass(frozen=True)
class Broken(Outcome):
    """A bug on the way: answered, logged, audited."""

    @property
    def result(self) -> str:
        return "internal error"


@dataclass(frozen=True)
class Ignored(Outcome):
    """Not for the bot (no role, not an admin room)."""

    @property
    def result(self) -> str:
        return "ignored"


@dataclass(frozen=True)
class HandedOff(Outcome):
    """It handed over to another command (its own row says which; the other runs as its own invocation)."""

    to: str = ""

    @property
    def result(self) -> str:
        return "handed off"


@dataclass(frozen=True)
class Cancelled(Outcome):
    """A pending invocation was dropped before it ran."""

    @property
    def result(self) -> str:
        return "cancelled"


@dataclass(frozen=True)
class Interrupted(Outcome):
    """A kill cut it short while it ran; nothing was run again."""

    @property
    def result(self) -> str:
        return "interrupted"


ANSWERED = Answered()
