"""Every exception on the way of an invocation becomes one answer, here and nowhere else.

Where it happened says only how the answer is worded: while checking what a command acts on, while
running it, while preparing its confirmation prompt, in a runtime verb, in a job, or anywhere on
the way of a message (a bug the pipeline did not expect). The outcome says what the audit log and
the metrics keep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from bot.handler_api import helptext
from bot.handler_api.argtypes import ArgumentError
from bot.handler_api.jobs import JobResult
from bot.handler_api.spec import Command, CommandError
from bot.homeserver.admin_api.errors import AdminAPIError, UnrecognizedEndpoint
from bot.runtime.outcome import Broken, Failed, Outcome, Refused, Usage
from bot.text.views import Doc, Text

if TYPE_CHECKING:
    from bot.mas import MASDetection

log = logging.getLogger(__name__)

Stage = Literal["check", "run", "preview", "verb", "confirm"]
HIDDEN = "they are not repeated here: the message may hold a password"


class Answers:
    def __init__(self, prefix: str, mas_detection: Callable[[], MASDetection | None] = lambda: None) -> None:
        self.prefix = prefix
        self.mas_detection = mas_detection  # where the accounts live, once known

    def api_error(self, exc: AdminAPIError) -> Text:
        """An Admin API error for the room; a missing endpoint on a homeserver whose accounts live in
        matrix-authentication-service says what to configure instead of a bare M_UNRECOGNIZED."""
        detection = self.mas_detection()
        advice = detection.advice() if detection is not None else None
        if advice is not None and isinstance(exc, UnrecognizedEndpoint):
            return Text(f"This homeserver does not offer this ({exc.errcode}). {advice}", tone="error")
        return helptext.api_error(exc)

    def usage(self, command: Command, message: str, secret: Command | None = None) -> Doc:
        """A usage error; for a command that may hold a password, without the parser's words (they
        may quote it: `unexpected argument 'horse'`)."""
        if secret is not None or command.secret_names:
            message = f"the arguments do not fit ({HIDDEN})"
        return helptext.usage_error(command, message, self.prefix)

    def of(self, exc: Exception, command: Command, *, stage: Stage) -> tuple[Any, Outcome]:
        """The answer to `exc`, raised while `command` was at `stage`, and its outcome. While
        checking, an exception that is not an answer of its own is raised again: it is a bug on the
        message's way (`internal`)."""
        if stage == "confirm":  # what the invocation acts on could not be found again
            if not isinstance(exc, (AdminAPIError, CommandError)):
                raise exc
            return Text(f"Not run: {command.name} could not check what it acts on ({exc}); nothing was done.",
                        tone="error"), Refused(str(exc))
        if stage == "verb" and isinstance(exc, (CommandError, ArgumentError)):
            return Text(f"{command.name}: {exc}", tone="error"), Refused(str(exc))
        if isinstance(exc, AdminAPIError):
            return self.api_error(exc), Failed(exc.errcode)
        if isinstance(exc, ArgumentError):
            return self.usage(command, str(exc)), Usage()
        if isinstance(exc, CommandError):
            return Text(f"{command.name}: {exc}", tone="error"), Refused(str(exc))
        if stage in ("check", "verb"):
            raise exc
        if stage == "preview":  # nothing waits for confirmation
            log.exception("the preview of %s failed", command.name, exc_info=exc)
            return Text(f"Internal error while preparing {command.name} ({type(exc).__name__}); "
                        "nothing was done. The bot's log has the details.", tone="error"), Broken()
        log.exception("command %s failed", command.name, exc_info=exc)  # a handler bug must not take the bot down
        return Text(f"Internal error while running {command.name} ({type(exc).__name__}); the bot's log has the details.",
                    tone="error"), Broken()

    @staticmethod
    def internal(exc: Exception) -> Text:
        """A bug anywhere on a message's way: it still gets an answer (and an audit row)."""
        return Text(f"Internal error ({type(exc).__name__}); the bot's log has the details. "
                    "If it changed anything, the audit log says so.", tone="error")

    @staticmethod
    def prompt_unsent(command: Command) -> Text:
        return Text(f"I could not show the confirmation prompt of {command.name}, so nothing waits for "
                    "confirmation and nothing was done. Send the command again.", tone="error")


def job_result(exc: Exception, job_id: int, kind: str) -> JobResult:
    """How a job ends on an exception that is not a passing outage."""
    if isinstance(exc, AdminAPIError):
        hint = f" {exc.hint}" if exc.hint else ""
        return JobResult("failed", Text(f"The homeserver refused: {exc.errcode}: {exc.error.rstrip('.')}.{hint}",
                                        tone="error"))
    if isinstance(exc, CommandError):
        return JobResult("failed", Text(str(exc), tone="error"))
    log.exception("job #%s (%s) failed", job_id, kind, exc_info=exc)  # a body's bug must not take the bot down
    return JobResult("failed", Text(f"The job stopped on an error: {type(exc).__name__}: {exc}", tone="error"))
