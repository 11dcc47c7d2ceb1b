"""Sizes, durations and points in time, as people write and read them.

A bottom-layer module: the argument types parse with it, the renderer formats with it; it imports
nothing of ours.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone


def human_size(size: int) -> str:
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
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


def parse_duration_ms(token: str) -> int | None:
    text = token.strip().lower()
    if not text or not re.fullmatch(r"(?:\d+\s*(?:min|[smhdwy])\s*)+", text):
        return None
    return sum(int(n) * _DURATION_UNITS_MS[unit] for n, unit in _DURATION_RE.findall(text))


def human_duration(ms: int) -> str:
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
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    if moment.second == 0 and moment.microsecond == 0:
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ms: int, now_ms: int) -> str:
    delta = timedelta(milliseconds=now_ms - ms)
    return human_duration(int(abs(delta.total_seconds()) * 1000))
