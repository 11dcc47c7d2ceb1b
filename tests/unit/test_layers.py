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

MATRIX_LAYER = ("nio", "aiohttp", "bot.matrix.client", "bot.matrix.events", "bot.matrix.crypto")
COMMAND_LAYER = ("commands", "bot.handler_api.spec", "bot.handler_api.parsing", "bot.runtime.dispatcher", "bot.handler_api.context", "bot.runtime.jobs")
RENDERING = ("bot.text.render", "bot.text.views")
STORAGE = ("sqlite3", "bot.state", "bot.records")
ADMIN_API = ("bot.homeserver.admin_api", "httpx")


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


def _dynamic_imports(tree: ast.AST, module: str, package: str) -> list[Import]:
    """`importlib.import_module(...)` and `__import__(...)` count as imports: a literal name is
    that module; `f"{__name__}.{x}"` is one of the module's own children (its own layer); any
    other computed name is an arrow the test cannot follow, and is reported as one."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name not in ("import_module", "__import__"):
            continue
        arg = node.args[0]
        anchored_here = (len(node.args) > 1 and isinstance(node.args[1], ast.Name)
                         and node.args[1].id in ("__name__", "__package__"))
        if anchored_here and not (isinstance(arg, ast.Constant) and str(arg.value).startswith("..")):
            found.append(Import(module, module, node.lineno))  # `import_module(name, __name__)`: a child of its own
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            target = arg.value
            if target.startswith("."):
                anchor = package if len(node.args) > 1 else module
                target = anchor + target if target != "." else anchor
            found.append(Import(module, target, node.lineno))
        elif (isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.FormattedValue)
              and isinstance(arg.values[0].value, ast.Name) and arg.values[0].value.id == "__name__"):
            found.append(Import(module, module, node.lineno))
        else:
            found.append(Import(module, "<computed>", node.lineno))
    return found


@cache
def imports_of(path: Path, root: Path = ROOT) -> tuple[Import, ...]:
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found += _dynamic_imports(tree, module, package)
    for node in _statements(tree):
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

# The house, top floor first (DESIGN.md). A module may import its own floor and any floor below it,
# never one above. The most specific prefix names a module's floor ("bot.demo" before "bot").
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("composition root and console", ("bot", "bot.app", "bot.cli", "bot.wiring", "bot.mas", "bot.__main__", "bot.demo")),
    ("runtime: the pipeline and its sources", ("bot.runtime",)),
    ("policy: who may", ("bot.policy",)),
    ("commands", ("commands",)),
    ("inbox: the report queue", ("bot.inbox",)),
    ("handler API", ("bot.handler_api",)),
    ("Matrix", ("bot.matrix",)),
    ("homeserver clients", ("bot.homeserver",)),
    ("configuration, logging, metrics", ("bot.config", "bot.logs", "bot.metrics")),
    ("state", ("bot.state",)),
    ("text", ("bot.text",)),
    # The plain records the stores keep and the floors above pass around (a report, a job, an audit
    # row): below state, which stores them, and importing nothing of ours, so that commands and
    # renderers can hold them without reaching into state.
    ("records: plain data", ("bot.records",)),
)

# Third-party packages a floor must not load, even where the floors allow the arrow.
TRANSPORT = ("httpx", "nio", "aiohttp", "sqlite3")
FORBIDDEN_PACKAGES: dict[str, tuple[str, ...]] = {
    "commands": TRANSPORT,
    "handler API": TRANSPORT,
    "inbox: the report queue": ("sqlite3",),
    "policy: who may": ("nio", "aiohttp", "sqlite3"),
    "homeserver clients": ("nio", "aiohttp", "sqlite3"),
    "state": ("httpx", "nio", "aiohttp"),
    "text": TRANSPORT,
    "records: plain data": TRANSPORT,
}

# What commands may use of the floors below them: the handler API, the homeserver clients' typed
# methods, errors and models, and text. Never the transport, the gate, policy or state.
COMMANDS_MAY_IMPORT = ("commands", "bot.handler_api", "bot.homeserver.admin_api", "bot.homeserver.mas_api",
                       "bot.homeserver.errors", "bot.records",
                       "bot.homeserver.accounts", "bot.handler_api.report_refs", "bot.inbox.views", "bot.text")
COMMANDS_MAY_NOT_IMPORT = ("bot.homeserver.http", "bot.homeserver.admin_api.http", "bot.homeserver.admin_api.api",
                           "bot.homeserver.mas_api.http", "bot.homeserver.mas_api.auth", "bot.homeserver.mas_api.api")

# Known arrows that still go up, each to be removed (and this list with it). Empty is the goal.
KNOWN_UPWARD: set[tuple[str, str]] = set()
# Known imports of commands outside COMMANDS_MAY_IMPORT, each to be removed. Empty is the goal.
COMMANDS_KNOWN: set[tuple[str, str]] = set()


def layer_of(name: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, floor)
    for floor, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if matches(name, (prefix,)) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), floor)
    return None if best is None else best[1]


ALL_FILES = files("bot", "commands")


def upward_imports(paths: Iterable[Path], root: Path = ROOT) -> list[str]:
    bad = []
    for path in paths:
        for imp in imports_of(path, root):
            if imp.target == "<computed>":
                bad.append(f"{imp.module} (line {imp.line}) imports a module whose name is computed")
                continue
            if not matches(imp.target, OURS):
                continue
            here, there = layer_of(imp.module), layer_of(imp.target)
            if here is None or there is None:
                bad.append(f"{imp.module} (line {imp.line}) imports {imp.target}: a module on no floor of LAYERS")
            elif there < here and (imp.module, imp.target) not in KNOWN_UPWARD:
                bad.append(f"{imp.module} (line {imp.line}) imports {imp.target}: "
                           f"up from {LAYERS[here][0]} to {LAYERS[there][0]}")
    return bad


def test_every_module_is_on_a_floor() -> None:
    lost = [m for m in modules_under("bot") + modules_under("commands") if layer_of(m) is None]
    assert not lost, lost


def test_no_import_goes_up_a_floor() -> None:
    """Module level, inside functions, and through importlib."""
    bad = upward_imports(ALL_FILES)
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


def test_the_known_upward_arrows_are_still_there() -> None:
    """An entry of KNOWN_UPWARD that no longer exists is deleted, so the list only shrinks."""
    present = {(i.module, i.target) for p in ALL_FILES for i in imports_of(p)}
    assert not KNOWN_UPWARD - present, KNOWN_UPWARD - present
    assert not COMMANDS_KNOWN - present, COMMANDS_KNOWN - present


@pytest.mark.parametrize("floor", sorted(FORBIDDEN_PACKAGES))
def test_a_floor_loads_none_of_its_forbidden_packages(floor: str) -> None:
    prefixes = dict(LAYERS)[floor]
    modules = [m for m in modules_under("bot") + modules_under("commands") if LAYERS[layer_of(m)][0] == floor
               and not any(matches(m, (p,)) for p in prefixes if p == "bot")]
    forbidden = FORBIDDEN_PACKAGES[floor]
    assert_imports_none([ROOT / (m.replace(".", "/") + ".py") if (ROOT / (m.replace(".", "/") + ".py")).exists()
                         else ROOT / m.replace(".", "/") / "__init__.py" for m in modules], forbidden)
    assert_reaches_none(modules, forbidden)


def test_commands_use_only_the_handler_api_the_clients_and_text() -> None:
    bad = [f"{i.module} (line {i.line}) imports {i.target}"
           for p in files("commands") for i in imports_of(p)
           if matches(i.target, OURS) and (not matches(i.target, COMMANDS_MAY_IMPORT)
                                            or matches(i.target, COMMANDS_MAY_NOT_IMPORT))
           and (i.module, i.target) not in COMMANDS_KNOWN]
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)
    assert_loads_none(modules_under("commands"), TRANSPORT)


def test_the_homeserver_clients_data_loads_no_transport() -> None:
    """What commands use of the clients (errors, models, each area's dataclasses) comes without httpx."""
    data_only = [m for m in modules_under("bot/homeserver/admin_api") + modules_under("bot/homeserver/mas_api")
                 if m.rsplit(".", 1)[-1] not in ("http", "api", "auth")]
    assert_loads_none(data_only, ("httpx",))
    from bot.homeserver import admin_api, mas_api

    assert admin_api.AdminAPI.__module__ == "bot.homeserver.admin_api.api"  # still there, loaded when asked for
    assert mas_api.MASAPI.__module__ == "bot.homeserver.mas_api.api"


def test_the_console_starts_without_matrix_nio() -> None:
    """`check` and `login` start without loading matrix-nio or the command runtime."""
    assert_loads_none(["bot.wiring", "bot.cli"], ("nio", "commands", "bot.runtime"))


def test_the_floor_check_sees_an_arrow_that_goes_up(tmp_path: Path) -> None:
    """On a small package: an upward import inside a function, a relative one, an importlib one,
    and one under TYPE_CHECKING (which loads nothing and is allowed)."""
    pkg = tmp_path / "bot"
    (pkg / "text").mkdir(parents=True)
    (pkg / "runtime").mkdir()
    for d in (pkg, pkg / "text", pkg / "runtime"):
        (d / "__init__.py").write_text("")
    (pkg / "runtime" / "pipeline.py").write_text("from ..text import render\n")
    (pkg / "text" / "render.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from bot.runtime import pipeline\n"
        "def later():\n    from ..runtime import pipeline\n"
        "def dynamic():\n    import importlib\n    importlib.import_module('bot.runtime.pipeline')\n"
        "def computed(x):\n    import importlib\n    importlib.import_module('bot.' + x)\n"
    )
    bad = upward_imports([pkg / "runtime" / "pipeline.py", pkg / "text" / "render.py"], tmp_path)
    assert bad == [
        "bot.text.render (line 11) imports a module whose name is computed",
        "bot.text.render (line 8) imports bot.runtime.pipeline: up from text to runtime: the pipeline and its sources",
        "bot.text.render (line 5) imports bot.runtime: up from text to runtime: the pipeline and its sources",
        "bot.text.render (line 5) imports bot.runtime.pipeline: up from text to runtime: the pipeline and its sources",
    ] or sorted(bad) == sorted([
        "bot.text.render (line 11) imports a module whose name is computed",
        "bot.text.render (line 8) imports bot.runtime.pipeline: up from text to runtime: the pipeline and its sources",
        "bot.text.render (line 5) imports bot.runtime: up from text to runtime: the pipeline and its sources",
        "bot.text.render (line 5) imports bot.runtime.pipeline: up from text to runtime: the pipeline and its sources",
    ])


def test_the_import_walkers_follow_chains(tmp_path: Path) -> None:
    """The loaders themselves: a chain through several modules, an import inside a function, and
    one that only serves annotations."""
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
    assert_imports_none([pkg / "bottom.py"], ("sqlite3",), tmp_path)
    reached = our_imports_closure(["layered.top"], tmp_path, ("layered",))
    assert reached["wave"] == ("layered.top", "layered.middle", "layered.bottom", "wave")
