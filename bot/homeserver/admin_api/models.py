"""Shared model helpers. Area modules define their own models next to their methods."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.records import from_mapping, record

T = TypeVar("T")
M = TypeVar("M")


@record
class Page(Generic[T]):
    """One page of a list endpoint; `next_token` is None on the last page."""

    items: list[T]
    total: int | None
    next_token: str | None


def build(cls: type[M], data: Mapping[str, Any], **overrides: Any) -> M:
    """Build a record from a JSON object, ignoring fields it does not know.

    Unknown keys are dropped on purpose: Synapse adds fields between versions, and some
    endpoints return things that must never be shown (the legacy user search returns
    password hashes).
    """
    if overrides:
        unknown = overrides.keys() - _field_names(cls)
        if unknown:
            raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
        data = {**data, **overrides}
    return from_mapping(cls, data)


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def next_token(data: Mapping[str, Any], key: str = "next_token") -> str | None:
    value = data.get(key)
    return None if value is None else str(value)
