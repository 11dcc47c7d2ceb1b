"""One store per aggregate over one database: each table is written by one store module, and the
bundle of every store (bot.state.stores.Stores) is opened only by the composition root, which hands
each part of the bot the stores it needs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.unit.test_layers import ROOT, imports_of

STATE = ROOT / "bot" / "state"
WRITES = re.compile(r"\b(?:INSERT(?: OR \w+)? INTO|(?<!DO )UPDATE|DELETE FROM)\s+(\w+)", re.IGNORECASE)
# The report inbox's poll cursors are saved in the transaction that records the reports they led
# to (ReportStore.record_new_reports): a crash cannot keep one without the other.
ALSO_WRITTEN_BY = {("meta", "reports")}
COMPOSITION_ROOT = {"bot.app", "bot.wiring", "bot.cli", "bot.state.stores"}


def _sql_written_by(path: Path) -> set[str]:
    tables: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            tables |= {t.lower() for t in WRITES.findall(node.value)}
    return tables


def test_each_table_is_written_by_one_store() -> None:
    writers: dict[str, list[str]] = {}
    for path in sorted(STATE.glob("*.py")):
        if path.name in ("db.py", "__init__.py"):  # the migrations write every table once, on open
            continue
        for table in _sql_written_by(path):
            writers.setdefault(table, []).append(path.stem)
    shared = {table: stores for table, stores in writers.items()
              if len([s for s in stores if (table, s) not in ALSO_WRITTEN_BY]) > 1}
    assert not shared, f"tables written by more than one store: {shared}"
    assert {"audit", "confirmations", "handled_events", "jobs", "meta", "reports", "undo"} <= set(writers)


def test_only_the_composition_root_holds_every_store() -> None:
    found = sorted(f"{imp.module} (line {imp.line})" for folder in ("bot", "commands")
                   for path in (ROOT / folder).rglob("*.py") for imp in imports_of(path)
                   if imp.target.startswith("bot.state.stores") and imp.module not in COMPOSITION_ROOT)
    assert not found, "the bundle of all stores is handed out by bot/app.py alone: " + ", ".join(found)
