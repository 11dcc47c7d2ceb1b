"""What became of one invocation, typed: the pipeline returns one of these, never a word to compare.

`result` is the word the audit log and the metrics keep for it ("ok", "refused", "error M_FORBIDDEN"…):
it is derived here and nowhere else.
"""

from __future__ import annotations

from typing import ClassVar

from bot.records import record


@record
class Outcome:
    """What became of one invocation; each kind is a subclass, and `word` is what the audit log keeps."""

    word: ClassVar[str]  # what the audit log and the metrics keep for it

    @property
    def result(self) -> str:
        return self.word

    ok: ClassVar[bool] = False  # it ran (or its job started) and succeeded


@record
class Answered(Outcome):
    """It ran and was answered."""

    word: ClassVar[str] = "ok"
    ok: ClassVar[bool] = True


@record
class Started(Outcome):
    """Its job was started; the job's own message answers from here."""

    job_id: int

    word: ClassVar[str] = "ok"
    ok: ClassVar[bool] = True


@record
class Prompted(Outcome):
    """It waits for confirmation under this code."""

    code: str

    word: ClassVar[str] = "pending"


@record
class DryRun(Outcome):
    """The prompt was shown and nothing waits."""

    word: ClassVar[str] = "dry-run"


@record
class Refused(Outcome):
    """It was refused, and not run: `reason` says why."""

    reason: str = ""

    word: ClassVar[str] = "refused"


@record
class Usage(Outcome):
    """The arguments did not fit."""

    word: ClassVar[str] = "usage"


@record
class Unknown(Outcome):
    """No such command (in this version of the bot)."""

    word: ClassVar[str] = "unknown"


@record
class Failed(Outcome):
    """The homeserver said no (its errcode), or the bot could not do its part (no errcode)."""

    word: ClassVar[str] = "error"
    errcode: str | None = None

    @property
    def result(self) -> str:
        return f"error {self.errcode}" if self.errcode else "error"


@record
class Broken(Outcome):
    """A bug on the way: answered, logged, audited."""

    word: ClassVar[str] = "internal error"


@record
class Ignored(Outcome):
    """Not for the bot (no role, not an admin room)."""

    word: ClassVar[str] = "ignored"


@record
class HandedOff(Outcome):
    """It handed over to another command (its own row says which; the other runs as its own invocation)."""

    to: str = ""

    word: ClassVar[str] = "handed off"


@record
class Cancelled(Outcome):
    """A pending invocation was dropped before it ran."""

    word: ClassVar[str] = "cancelled"


@record
class Interrupted(Outcome):
    """A kill cut it short while it ran; nothing was run again."""

    word: ClassVar[str] = "interrupted"


ANSWERED = Answered()
