"""The import arrows between layers (DESIGN.md, "Dependencies point one way").

Two checks per rule, because each misses what the other sees:
- what importing the modules really loads, in a fresh interpreter (`python -X importtime`), which
  follows every chain through our modules and third-party ones, and names the chain on failure;
- the import statements of the files themselves (ast), including imports inside functions that
  only run later, and leaving out those under `if TYPE_CHECKING:` (annotations load nothing).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("bot", "commands")

MATRIX_LAYER = ("nio", "aiohttp", "bot.matrix", "bot.events", "bot.crosssigning")
COMMAND_LAYER = ("commands", "bot.spec", "bot.parsing", "bot.dispatcher", "bot.context", "bot.jobs")
RENDERING = ("bot.render", "bot.views")
STORAGE = ("sqlite3", "bot.storage", "bot.records")
ADMIN_API = ("bot.admin_api", "httpx")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules_under(folder: str) -> list[str]:
    return sorted(module_name(p) for p in (ROOT / folder).rglob("*.py"))


def matches(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# -- what importing really loads


@cache
def loaded_by(modules: tuple[str, ...], root: Path = ROOT) -> dict[str, tuple[str, ...]]:
    """Every module that importing `modules` loads, with the chain of imports that loaded it."""
    code = "\n".join(f"import {m}" for m in modules)
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    entries = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        field = line.split("|", 2)[2]
        if field.strip() == "imported package":
            continue
        entries.append(((len(field) - len(field.lstrip()) - 1) // 2, field.strip()))
    # importtime prints a module after everything it imported, one level deeper: reversed, it
    # is a pre-order walk of the import tree.
    chains: dict[str, tuple[str, ...]] = {}
    path: list[str] = []
    for depth, name in reversed(entries):
        del path[depth:]
        path.append(name)
        chains.setdefault(name, tuple(path))
    return chains


def assert_loads_none(modules: Iterable[str], forbidden: Iterable[str]) -> None:
    forbidden = tuple(forbidden)
    chains = loaded_by(tuple(modules))
    # Each chain up to the first forbidden module it reaches (not everything that one loads after).
    found = sorted(chain for chain in chains.values()
                   if matches(chain[-1], forbidden) and not any(matches(m, forbidden) for m in chain[:-1]))
    if found:
        pytest.fail("\n".join(" → ".join(chain) for chain in found), pytrace=False)


# -- what the files say


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # what it imports, absolute
    line: int


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement that runs at some point: module level or inside functions."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                yield from _statements(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _statements(node)


@cache
def imports_of(path: Path, root: Path = ROOT) -> tuple[Import, ...]:
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in _statements(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        found.append(Import(module, base, node.lineno))
        for alias in node.names:  # `from . import helptext` imports a module
            candidate = f"{base}.{alias.name}"
            if (root / (candidate.replace(".", "/") + ".py")).exists() or (root / candidate.replace(".", "/")).is_dir():
                found.append(Import(module, candidate, node.lineno))
    return tuple(found)


def files(*paths: str) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        full = ROOT / p
        out += sorted(full.rglob("*.py")) if full.is_dir() else [full]
    return out


def assert_imports_none(paths: Iterable[Path], forbidden: Iterable[str], root: Path = ROOT) -> None:
    bad = [f"{i.module} (line {i.line}) imports {i.target}"
           for path in paths for i in imports_of(path, root) if matches(i.target, tuple(forbidden))]
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


def our_imports_closure(start: Iterable[str], root: Path = ROOT, ours: tuple[str, ...] = OURS) -> dict[str, tuple[str, ...]]:
    """Our modules reachable from `start` through import statements (also those inside functions),
    and every third-party module they import, each with one chain that reaches it."""
    paths = {module_name(p, root): p for folder in ours for p in (root / folder).rglob("*.py")}
    chains: dict[str, tuple[str, ...]] = {m: (m,) for m in start}
    todo = list(start)
    while todo:
        current = todo.pop()
        # Importing a module runs its packages' __init__ first.
        parents = [".".join(current.split(".")[:n]) for n in range(1, current.count(".") + 1)]
        for name in [*parents, current]:
            if name not in paths:
                continue
            for imp in imports_of(paths[name], root):
                if imp.target in chains:
                    continue
                chains[imp.target] = (*chains[current], imp.target)
                if matches(imp.target, ours):
                    todo.append(imp.target)
    return chains


def assert_reaches_none(start: Iterable[str], forbidden: Iterable[str]) -> None:
    """Not even through an import inside a function of a module on the way."""
    forbidden = tuple(forbidden)
    reached = our_imports_closure(start)
    found = sorted(chain for chain in reached.values()
                   if matches(chain[-1], forbidden) and not any(matches(m, forbidden) for m in chain[:-1]))
    if found:
        pytest.fail("\n".join(" → ".join(chain) for chain in found), pytrace=False)


# -- the rules


COMMANDS = modules_under("commands")
ADMIN_API_MODULES = modules_under("bot/admin_api")
MAS_API_MODULES = modules_under("bot/mas_api")
BOTTOM_FLOOR = ["bot.ids", "bot.units", "bot.backoff"]  # nothing of ours at all
FLOOR = (*BOTTOM_FLOOR, "bot.gate", "bot.records", "bot.storage", "bot.config", "bot.logs", "bot.metrics")


def test_rendering_calls_no_api_and_sends_nothing() -> None:
    forbidden = (*ADMIN_API, *MATRIX_LAYER, "sqlite3", "bot.storage")
    assert_loads_none(["bot.render"], forbidden)
    assert_imports_none(files("bot/render.py", "bot/views.py"), forbidden)
    assert_reaches_none(["bot.render"], forbidden)


def test_commands_know_no_transport_no_matrix_and_no_database() -> None:
    forbidden = ("httpx", "nio", "aiohttp", "sqlite3", "bot.matrix", "bot.storage", "bot.admin_api.http")
    assert_loads_none(COMMANDS, forbidden)
    assert_imports_none(files("commands"), forbidden)
    assert_reaches_none(COMMANDS, forbidden)


def test_the_admin_api_errors_and_models_load_no_transport() -> None:
    """What commands use of the client (errors, models, each area's dataclasses) comes without httpx."""
    data_only = [m for m in ADMIN_API_MODULES if m not in ("bot.admin_api.http", "bot.admin_api.api")]
    assert_loads_none(data_only, ("httpx",))
    import bot.admin_api

    assert bot.admin_api.AdminAPI.__module__ == "bot.admin_api.api"  # still there, loaded when asked for


def test_the_admin_api_knows_no_matrix_commands_rendering_or_storage() -> None:
    forbidden = (*MATRIX_LAYER, *COMMAND_LAYER, *RENDERING, *STORAGE)
    assert_loads_none(ADMIN_API_MODULES, forbidden)
    assert_imports_none(files("bot/admin_api"), forbidden)
    assert_reaches_none(ADMIN_API_MODULES, forbidden)


def test_the_mas_api_knows_no_matrix_commands_rendering_or_storage() -> None:
    """matrix-authentication-service's client: httpx and its own models, the Synapse client's error
    kinds (data only) and the floor's segment rules; nothing above."""
    forbidden = (*MATRIX_LAYER, *COMMAND_LAYER, *RENDERING, *STORAGE, "bot.config", "bot.wiring", "bot.mas",
                 "bot.admin_api.http", "bot.admin_api.api")
    assert_loads_none(MAS_API_MODULES, forbidden)
    assert_imports_none(files("bot/mas_api"), forbidden)
    assert_reaches_none(MAS_API_MODULES, forbidden)


def test_the_mas_api_errors_and_models_load_no_transport() -> None:
    """What commands will use of the MAS client (errors, models, each area's module) comes without httpx."""
    data_only = [m for m in MAS_API_MODULES if m not in ("bot.mas_api.http", "bot.mas_api.api", "bot.mas_api.auth")]
    assert_loads_none(data_only, ("httpx",))
    import bot.mas_api

    assert bot.mas_api.MASAPI.__module__ == "bot.mas_api.api"  # still there, loaded when asked for


def test_the_bottom_floor_imports_nothing_of_ours() -> None:
    assert_imports_none(files(*(m.replace(".", "/") + ".py" for m in BOTTOM_FLOOR)), OURS)
    chains = loaded_by(tuple(BOTTOM_FLOOR))
    ours = sorted(" → ".join(chain) for name, chain in chains.items() if matches(name, OURS) and name not in ("bot", *BOTTOM_FLOOR))
    assert not ours, ours


def test_the_rest_of_the_floor_stays_on_the_floor() -> None:
    """The store, its records, the config, logging and metrics import only from the floor."""
    chains = loaded_by(FLOOR)
    above = sorted(" → ".join(chain) for name, chain in chains.items() if matches(name, OURS) and name not in ("bot", *FLOOR))
    assert not above, above
    assert_reaches_none(FLOOR, tuple(m for m in modules_under("bot") if m not in ("bot", *FLOOR)))


def test_the_records_need_no_database() -> None:
    assert_loads_none(["bot.records"], ("sqlite3",))


def test_the_matrix_layer_knows_no_command_and_no_endpoint() -> None:
    forbidden = (*COMMAND_LAYER, "bot.argtypes", "bot.admin_api")
    assert_loads_none(["bot.matrix"], forbidden)
    assert_imports_none(files("bot/matrix.py"), forbidden)
    assert_reaches_none(["bot.matrix"], forbidden)


def test_the_checks_see_a_broken_arrow(tmp_path: Path) -> None:
    """The checks themselves, on a small package: a chain through several modules, an import
    inside a function, a relative one, and one that only serves annotations."""
    pkg = tmp_path / "layered"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "top.py").write_text("from . import middle\n")
    (pkg / "middle.py").write_text("from .bottom import thing\n")
    (pkg / "bottom.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import colorsys\n"
        "if TYPE_CHECKING:\n    import sqlite3\n"
        "thing = 1\n"
        "def later():\n    import wave\n"
    )
    chains = loaded_by(("layered.top",), tmp_path)
    assert chains["colorsys"] == ("layered.top", "layered.middle", "layered.bottom", "colorsys")
    assert "sqlite3" not in chains and "wave" not in chains  # only what really runs at import

    with pytest.raises(pytest.fail.Exception, match=r"layered\.bottom \(line 7\) imports wave"):
        assert_imports_none([pkg / "bottom.py"], ("wave",), tmp_path)
    assert_imports_none([pkg / "bottom.py"], ("sqlite3",), tmp_path)  # annotations only: no arrow
    reached = our_imports_closure(["layered.top"], tmp_path, ("layered",))
    assert reached["wave"] == ("layered.top", "layered.middle", "layered.bottom", "wave")
    assert reached["layered.bottom"][:2] == ("layered.top", "layered.middle")


def test_the_shared_wiring_builds_parts_not_the_command_runtime() -> None:
    """bot/wiring.py builds what the app and the CLI share; the command runtime stays in bot/app.py,
    and the CLI's `check` and `login` start without loading matrix-nio."""
    forbidden = (*COMMAND_LAYER, "nio")
    assert_loads_none(["bot.wiring", "bot.cli"], forbidden)
    assert_reaches_none(["bot.wiring"], COMMAND_LAYER)


def test_a_handlers_context_reaches_no_store_dispatcher_or_access_rules() -> None:
    """What a handler gets (bot/context.py, bot/services.py) does not bring the runtime's own parts."""
    forbidden = ("sqlite3", "bot.storage", "bot.dispatcher", "bot.access", "bot.policy", "bot.jobs", "bot.matrix")
    assert_loads_none(["bot.context", "bot.services"], forbidden)
    assert_reaches_none(["bot.context", "bot.services"], forbidden)


def test_typed_previews_are_views_and_stored_invocations_need_no_database() -> None:
    assert_reaches_none(["bot.previews"], (*ADMIN_API, *MATRIX_LAYER, *STORAGE, *COMMAND_LAYER))
    # The dossier shows the queue's records (plain data), never the database behind them.
    assert_reaches_none(["bot.dossier"], (*ADMIN_API, *MATRIX_LAYER, "sqlite3", "bot.storage", *COMMAND_LAYER))
    # What a command declares about its undo: no database, no Matrix, no transport.
    assert_reaches_none(["bot.reversal"], (*MATRIX_LAYER, *STORAGE, "httpx", "bot.dispatcher", "bot.jobs", "bot.undo"))
    assert_reaches_none(["bot.invocation"], (*MATRIX_LAYER, *STORAGE, "bot.dispatcher", "bot.jobs", "bot.admin_api"))
