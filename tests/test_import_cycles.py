"""No import cycle inside `unlearning/`: every arrow between its modules runs one way.

Every module is parsed with `ast` and every import counts — module-level, function-level,
under `TYPE_CHECKING`, absolute and relative — resolved to the package's own modules:

- `from a.b import c` is an arrow to `a.b.c` when that is a module, else to `a.b`;
- importing `a.b.c` runs `a/__init__` and `a/b/__init__` first: arrows to them too;
- a package whose `__init__` calls `import_modules(__name__, __path__)` (`unlearning.common.plugins`:
  the registries find their modules by walking the package) imports each public child;
- a module's arrows to its own ancestor packages are dropped: a package's `__init__` runs
  before its children by construction (`from unlearning.methods import register` in a method
  module is how the registries work).

A cycle is a strongly connected component of more than one module (Tarjan's algorithm); the
failure names each one, with one closed path through it and the line of every import on it.
Imports by computed name (`importlib.import_module(f"...")`) cannot be read; the package makes none
between its own modules (`unlearning/__init__`'s lazy public names, which name modules below it, aside):
`Config`, the floor, imports neither registry, and a config is resolved above both
(`unlearning.methods.settings`). `test_each_layer_imports_first` imports the modules others build
on, each first into a fresh package, so a cycle through one of those still fails too.
"""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import textwrap
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "unlearning"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `package` (a package is its __init__)."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_names(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The dotted names an import statement in `module` may refer to (a module, or a name in one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - node.level + 1]
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def own_module(name: str, modules) -> str | None:
    """The longest prefix of dotted `name` that is one of `modules`, or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def with_ancestors(name: str) -> list[str]:
    """`a.b.c` -> [`a.b.c`, `a.b`, `a`]: importing a module runs its packages' __init__ first."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def walks_its_package(node: ast.AST) -> bool:
    """Is `node` a call `import_modules(...)` (or `plugins.import_modules(...)`)?"""
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)) == "import_modules"


def module_arrows(module: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """Modules of the package that `module` imports -> the line of its first import of each."""
    arrows: dict[str, int] = {}
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found = {own_module(n, modules) for n in imported_names(module, is_package, node)} - {None}
            targets = {a for name in found for a in with_ancestors(name) if a in modules}
        elif is_package and walks_its_package(node):
            targets = {m for m in modules if m.rpartition(".")[0] == module
                       and not m.rpartition(".")[2].startswith("_")}
        else:
            continue
        for target in targets:
            arrows.setdefault(target, node.lineno)
    mine = set(with_ancestors(module))               # itself and its own packages: not arrows
    return {t: line for t, line in arrows.items() if t not in mine}


def import_graph(package: Path) -> tuple[dict[str, set[str]], dict[tuple[str, str], str]]:
    """Arrows between the modules of `package`, and where each is (`file:line`, relative to its parent)."""
    modules = module_files(package)
    graph, where = {}, {}
    for module, path in modules.items():
        arrows = module_arrows(module, path, modules)
        graph[module] = set(arrows)
        for target, line in arrows.items():
            where[module, target] = f"{path.relative_to(package.parent)}:{line}"
    return graph, where


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node, each sorted (Tarjan, 1972)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def closed_path(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start, inside = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & inside):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    raise AssertionError(f"{component} is not strongly connected")


def describe_cycles(package: Path) -> list[str]:
    """One line per import cycle in `package`: its modules, and a closed path with each import's line."""
    graph, where = import_graph(package)
    lines = []
    for component in strongly_connected(graph):
        path = closed_path(graph, component)
        steps = " -> ".join(f"{a} ({where[a, b]})" for a, b in itertools.pairwise(path))
        lines.append(f"cycle of {len(component)} modules: {', '.join(component)}; e.g. {steps} -> {path[-1]}")
    return lines


def test_unlearning_has_no_import_cycle():
    cycles = describe_cycles(PACKAGE)
    assert not cycles, ("import cycles inside unlearning/ (make the arrows run one way: move the shared "
                        "name down, or pass what is needed in):\n" + "\n".join(cycles))


def test_the_package_is_read_whole():
    """The graph sees every module and the arrows the layering rests on (the test is not vacuous)."""
    graph, where = import_graph(PACKAGE)
    assert len(graph) == len(list(PACKAGE.rglob("*.py")))
    assert "unlearning.data.registry" in graph["unlearning.training.models"]          # function-level import
    assert "unlearning.training.ensemble" in graph["unlearning.methods.base"]
    assert {"unlearning.methods.base", "unlearning.methods.finetune"} <= graph["unlearning.methods"]  # walked
    assert "unlearning.training.progress" in graph["unlearning.training.train"]       # `from . import progress`
    assert where["unlearning.training.models", "unlearning.data.registry"].startswith("unlearning/training/models.py:")


def test_config_is_the_floor():
    """`Config` is data with local checks: `unlearning.config` imports no module of the package, by name or by a
    computed one (`importlib`); its settings are resolved above both registries."""
    graph, _ = import_graph(PACKAGE)
    assert graph["unlearning.config"] == set()
    assert "importlib" not in (PACKAGE / "config.py").read_text(encoding="utf-8")
    assert {"unlearning.data.registry", "unlearning.methods.base"} <= graph["unlearning.methods.settings"]


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root / next(iter(files)).split("/")[0]


def test_cycles_through_function_level_relative_and_walked_imports_are_found(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "def f():\n    from .reg import thing\n",           # function-level, relative: up
        "pkg/reg/__init__.py": "from ..plugins import import_modules\nimport_modules(__name__, __path__)\n",
        "pkg/reg/one.py": "from pkg.reg import thing\nfrom ..mid import g\n",   # parent: dropped; mid: counted
        "pkg/reg/_private.py": "import pkg.top\n",                             # not walked
        "pkg/mid.py": "import pkg.low\n",
        "pkg/plugins.py": "",
        "pkg/top.py": "from pkg import reg\n",
    })
    (line,) = describe_cycles(pkg)
    assert line.startswith("cycle of 4 modules: pkg.low, pkg.mid, pkg.reg, pkg.reg.one; e.g. pkg.low (pkg/low.py:2) "
                           "-> pkg.reg (pkg/reg/__init__.py:2) -> pkg.reg.one (pkg/reg/one.py:2) -> pkg.mid "
                           "(pkg/mid.py:1) -> pkg.low")


def test_a_child_importing_its_own_package_is_no_cycle(tmp_path):
    pkg = write_package(tmp_path, {
        "pkg/__init__.py": "from .a import x\n",
        "pkg/a.py": "from pkg import y\nfrom . import b\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.c\n",
        "pkg/c.py": "import os, pkg.d\n",
        "pkg/d.py": "",
    })
    assert describe_cycles(pkg) == []
    graph, _ = import_graph(pkg)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.d"}, "pkg.d": set()}


# the layers other modules build on (a method module imports base, group, train, ensemble, config, models)
FIRSTS = ("unlearning.config", "unlearning.data", "unlearning.data.registry", "unlearning.training.models",
          "unlearning.training.train", "unlearning.evaluation.metrics", "unlearning.training.ensemble",
          "unlearning.methods.base", "unlearning.methods.group", "unlearning.methods", "unlearning.methods.settings",
          "unlearning.running.experiment")
IMPORT_EACH_FIRST = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for key in [k for k in sys.modules if k == "unlearning" or k.startswith("unlearning.")]:
        del sys.modules[key]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
for key in [k for k in sys.modules if k == "unlearning" or k.startswith("unlearning.")]:
    del sys.modules[key]
try:                                         # the package alone, then the preset that needs both registries
    importlib.import_module("unlearning").get_config("synthetic")
except Exception as exc:
    failed.append(f"unlearning, then get_config: {type(exc).__name__}: {exc}")
print("\\n".join(failed))
"""


def test_each_layer_imports_first():
    """Each imported first into a fresh `unlearning` (one interpreter: torch is imported once)."""
    run = subprocess.run([sys.executable, "-c", IMPORT_EACH_FIRST, *FIRSTS], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", "modules that fail when imported first:\n" + run.stdout


# The rooms of the package, lowest first (README.md, "Layout"): a module may import its own room and the rooms before
# it, never one after it, so the library (config .. evaluation) never imports the tooling (running, bench).
ROOMS = ("common", "config", "data", "training", "methods", "evaluation", "running", "bench")


def room_of(module: str) -> str | None:
    """`unlearning.data.mnist` -> `data`; None for the package's own `__init__` / `__main__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__main__" else None


def upward_arrows(graph: dict[str, set[str]], where: dict[tuple[str, str], str]) -> list[str]:
    """Every import from a room to a later one, as 'importer -> imported (file:line)'."""
    out = []
    for module, targets in sorted(graph.items()):
        here = room_of(module)
        for target in sorted(targets):
            there = room_of(target)
            if here is not None and there is not None and ROOMS.index(there) > ROOMS.index(here):
                out.append(f"{module} -> {target} ({where[module, target]})")
    return out


def test_rooms_import_only_from_the_rooms_below():
    graph, where = import_graph(PACKAGE)
    rooms = {room_of(m) for m in graph} - {None}
    assert rooms == set(ROOMS), f"rooms not in ROOMS (add them where they belong): {sorted(rooms - set(ROOMS))}"
    assert upward_arrows(graph, where) == []
    top = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(top) <= 10, f"the top of unlearning/ shows the architecture at a glance: {top}"


def test_an_upward_arrow_is_named_with_its_line():
    graph = {"unlearning.data.base": {"unlearning.running.cli"}, "unlearning.running.cli": {"unlearning.data.base"}}
    where = {("unlearning.data.base", "unlearning.running.cli"): "unlearning/data/base.py:7",
             ("unlearning.running.cli", "unlearning.data.base"): "unlearning/running/cli.py:3"}
    assert upward_arrows(graph, where) == ["unlearning.data.base -> unlearning.running.cli (unlearning/data/base.py:7)"]
