"""Command groups, one module per group. `load_table()` collects every declared group, and the
runtime's own verbs (help, confirm, cancel, audit, jobs: bot/handler_api/verbs.py)."""

from __future__ import annotations

import importlib
import pkgutil

from bot.handler_api.spec import CommandGroup, CommandTable
from bot.handler_api.verbs import meta

# Help lists groups in this order (`meta`: the runtime's verbs); modules not named here follow alphabetically.
_ORDER = ["server", "user", "room", "media", "token", "federation", "notice", "reports", "meta"]


def load_groups() -> list[CommandGroup]:
    names = [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")] + ["meta"]
    names.sort(key=lambda n: (_ORDER.index(n) if n in _ORDER else len(_ORDER), n))
    groups: list[CommandGroup] = []
    for name in names:
        if name == "meta":
            groups.append(meta)
            continue
        module = importlib.import_module(f"{__name__}.{name}")
        groups.extend(v for v in vars(module).values() if isinstance(v, CommandGroup))
    return groups


def load_table() -> CommandTable:
    return CommandTable(load_groups())
