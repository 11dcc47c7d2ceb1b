"""Logging: human-readable lines or JSON lines, with every known secret scrubbed from the output.

Scrubbing happens in the formatter, after the message and any traceback are formatted, so a
token can leak through neither a log call's arguments nor an exception's text.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

REDACTED = "***"
# Loggers that log each HTTP request at INFO: useful at DEBUG only.
CHATTY = ("nio", "httpx", "httpcore", "aiohttp", "peewee")
# Loggers that write whole responses at DEBUG — a login response holds a fresh access token
# before the scrubber can know it — so they never go below INFO, even with --log-level DEBUG.
NEVER_DEBUG = ("nio",)


class SecretScrubber:
    """The secrets to hide: tokens, passwords, keys, as they become known."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 6:  # shorter strings would scrub ordinary words
            self._secrets.add(secret)

    def scrub(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class ScrubbingFormatter(logging.Formatter):
    def __init__(self, inner: logging.Formatter, scrubber: SecretScrubber) -> None:
        super().__init__()
        self._inner = inner
        self._scrubber = scrubber

    def format(self, record: logging.LogRecord) -> str:
        return self._scrubber.scrub(self._inner.format(record))


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):  # the facts of an operator's line (bot/runtime/oplog.py), as keys of their own
            entry.update({key: value for key, value in fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, log_format: str, scrubber: SecretScrubber, stream: TextIO | None = None) -> None:
    inner: logging.Formatter
    if log_format == "json":
        inner = JSONFormatter()
        inner.converter = __import__("time").gmtime
    else:
        inner = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(ScrubbingFormatter(inner, scrubber))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    for name in NEVER_DEBUG:
        if level == "DEBUG":
            logging.getLogger(name).setLevel(logging.INFO)
