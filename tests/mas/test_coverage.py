"""Every operation of docs/mas-admin-api.tsv is a method of the MAS client (its docstring names the
operationId), or listed in NOT_OFFERED with the reason; and the table matches the description."""

from __future__ import annotations

import csv
import inspect
import json
from pathlib import Path

from bot.homeserver.mas_api import MASAPI, NOT_OFFERED

DOCS = Path(__file__).resolve().parents[2] / "docs"


def operations() -> list[dict[str, str]]:
    with (DOCS / "mas-admin-api.tsv").open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_the_table_and_the_description_name_the_same_47_operations() -> None:
    spec = json.loads((DOCS / "mas-admin-api-spec.json").read_text())
    described = {(method.upper(), path.replace("{", "<").replace("}", ">"), op["operationId"])
                 for path, item in spec["paths"].items() for method, op in item.items()}
    listed = {(row["method"], row["path"], row["notes"]) for row in operations()}
    assert listed == described and len(listed) == 47


def test_every_operation_is_a_client_method_or_has_a_reason() -> None:
    documented: dict[str, str] = {}
    for name, member in inspect.getmembers(MASAPI, inspect.iscoroutinefunction):
        for row in operations():
            if f"({row['notes']})" in (member.__doc__ or ""):
                documented.setdefault(row["notes"], name)
    missing = [row["notes"] for row in operations() if row["notes"] not in documented and row["notes"] not in NOT_OFFERED]
    assert missing == []
    assert not set(documented) & set(NOT_OFFERED)
    assert len(documented) == 43 and all(NOT_OFFERED.values())
