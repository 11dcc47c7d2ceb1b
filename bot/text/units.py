"""Sizes, durations and points in time, as people write and read them.

A bottom-layer module: the argument types parse with it, the renderer formats with it; it imports
nothing of ours.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone


# The latest moment Python's datetime (and most people) can show: 9999-12-31 23:59:59.999 UTC.
MAX_TIME_MS = 253_402_300_799_999
MIN_TIME_MS = -62_135_596_800_000  # 0001-01-01 00:00 UTC
# Durations are written with at most this many digits per number: more is never meant, and
# Python refuses to turn more than 4,300 digits into an int.
MAX_DURATION_DIGITS = 12


def human_size(size: int) -> str:
    """A size as people read it; any value a server may send (negative, huge, not a number) shows."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        return f"{str(size)[:40]} (not a size)"
    if size != size or size in (float("inf"), float("-inf")):
        return f"{size} (not a size)"
    value = float(size)
    for unit in units:
        if abs(value) < 1024 or unit == units[-1]:
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{size} bytes"


_DURATION_UNITS_MS = {
    "s": 1000,
    "m": 60_000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 365 * 86_400_000,
}
_DURATION_RE = re.compile(r"(\d+)\s*(min|[smhdwy])", re.IGNORECASE)
_DURATION_FULL_RE = re.compile(r"(?:\d{1,%d}\s*(?:min|[smhdwy])\s*){1,8}" % MAX_DURATION_DIGITS)


def parse_duration_ms(token: str) -> int | None:
    """`30d`, `1d12h`, … in milliseconds; None when it is not a duration (numbers of more than
    MAX_DURATION_DIGITS digits and more than 8 parts included)."""
    text = token.strip().lower()
    if not text or len(text) > 120 or not _DURATION_FULL_RE.fullmatch(text):
        return None
    return sum(int(n) * _DURATION_UNITS_MS[unit] for n, unit in _DURATION_RE.findall(text))


def human_duration(ms: int) -> str:
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms != ms or abs(ms) == float("inf"):
        return f"{str(ms)[:40]} (not a duration)"
    if ms < 0:
        return "-" + human_duration(-ms)
    seconds = int(ms // 1000)
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2])


def format_ts(ms: int) -> str:
    """A point in time as `2024-01-31 12:00 UTC`. Never raises: a value no calendar can show (a
    federated event may claim any timestamp) is shown as such."""
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms != ms:
        return f"{str(ms)[:40]} (not a time)"
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        return f"{ms} ms (out of range)"
    try:
        moment = time.gmtime(ms // 1000)  # a third of datetime's cost: exports format every row's times
    except (OverflowError, OSError, ValueError):
        return f"{ms} ms (out of range)"
    if moment.tm_sec == 0 and ms % 1000 == 0:
        return time.strftime("%Y-%m-%d %H:%M UTC", moment)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", moment)


def ago(ms: int, now_ms: int) -> str:
    try:
        delta = timedelta(milliseconds=now_ms - ms)
    except (OverflowError, TypeError, ValueError):
        return "(unknown)"
    return human_duration(int(abs(delta.total_seconds()) * 1000))
