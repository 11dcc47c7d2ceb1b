"""The words the report inbox shares: report kinds, queue states, and report references."""

from __future__ import annotations

import re
from typing import Any

from bot.handler_api.argtypes import ArgumentError, ParseEnv

EVENT = "event"
USER = "user"
KINDS = (EVENT, USER)

OPEN, CLAIMED, RESOLVED, DISMISSED = "open", "claimed", "resolved", "dismissed"
CLOSED = (RESOLVED, DISMISSED)


# -- report references: `12` is event report 12, `u12` user report 12


def ref_label(kind: str, report_id: int) -> str:
    return str(report_id) if kind == EVENT else f"u{report_id}"


class ReportRef(str):
    """An argument naming a report: `12` (event report) or `u12` (user report)."""

    label = "report"
    _PATTERN = re.compile(r"^(?:#)?(u?)(\d{1,18})$", re.IGNORECASE)

    @property
    def kind(self) -> str:
        return USER if self.startswith("u") else EVENT

    @property
    def id(self) -> int:
        return int(self.lstrip("u"))

    @classmethod
    def of(cls, kind: str, report_id: int) -> ReportRef:
        return cls(ref_label(kind, report_id))

    @classmethod
    def parse(cls, token: str, env: ParseEnv | None = None) -> ReportRef:
        match = cls._PATTERN.match(token.strip())
        if not match:
            raise ArgumentError(f"{token!r} is not a report: expected a number (event report) or u<number> (user report)")
        return cls.of(USER if match.group(1) else EVENT, int(match.group(2)))

    @classmethod
    def describe(cls, value: Any) -> str:
        ref = cls.parse(str(value))
        return f"{ref.kind} report {ref}"

    @classmethod
    def load(cls, raw: Any) -> ReportRef:
        return cls.parse(str(raw))
